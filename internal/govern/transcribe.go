package govern

import (
	"context"
	"encoding/json"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// Input audio transcription (a realtime session with
// audio.input.transcription, or a transcription session) is billed
// upstream per conversation.item.input_audio_transcription.completed,
// token- or duration-billed. Each is one ledger entry: Kind
// store.LedgerTranscription, ResponseID "transcription:<item_id>", the
// transcription model in force and its cost; the store's (session,
// response id) key makes it exactly once. Nothing is reserved before a
// transcription, so it is charged when its usage arrives, and once an
// account's spend plus the session's outstanding response grants reaches
// its limit the session ends with budget_exceeded: the account ends over
// its limit by less than this one transcription.

// transcription is a session's view of its input transcription model: the
// model of the last session config upstream confirmed; guarded by s.mu.
type transcription struct {
	known bool   // a session config said
	model string // "" when transcription is off or the model unknown
}

// transcriptionModel reads the transcription model of a session object in
// the GA or beta shape; set is false when the object does not say.
func transcriptionModel(session json.RawMessage) (model string, set bool) {
	var c struct {
		Audio *struct {
			Input *struct {
				// RawMessage (not a pointer) keeps an explicit null.
				Transcription json.RawMessage `json:"transcription"`
			} `json:"input"`
		} `json:"audio"`
		InputAudioTranscription json.RawMessage `json:"input_audio_transcription"` // beta
	}
	if json.Unmarshal(session, &c) != nil {
		return "", false
	}
	raw := c.InputAudioTranscription
	if c.Audio != nil && c.Audio.Input != nil && c.Audio.Input.Transcription != nil {
		raw = c.Audio.Input.Transcription
	}
	if raw == nil {
		return "", false
	}
	var sp *struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(raw, &sp) != nil {
		return "", false
	}
	if sp == nil { // null: off
		return "", true
	}
	return sp.Model, true
}

// transcriptionCompleted meters one completed input audio transcription
// that carries usage and charges it to the budgets. A malformed event or
// usage is logged and counted, never fatal.
func (s *Session) transcriptionCompleted(ctx context.Context, frame []byte) {
	ev, err := realtime.DecodeTranscriptionCompleted(frame)
	if err != nil {
		s.g.logger().Error("undecodable transcription event", "session_id", s.rec.ID, "err", err)
		s.g.Metrics.error("bad_transcription_usage")
		return
	}
	if ev.Usage == nil {
		s.g.logger().Debug("transcription without usage; not metered", "session_id", s.rec.ID, "item_id", ev.ItemID)
		return
	}
	tu, err := realtime.DecodeTranscriptionUsage(ev.Usage)
	if err != nil {
		s.g.logger().Error("transcription usage not metered", "session_id", s.rec.ID, "item_id", ev.ItemID, "err", err)
		s.g.Metrics.error("bad_transcription_usage")
		return
	}
	s.mu.Lock()
	model := s.tr.model
	if !s.tr.known || model == "" {
		if m, _ := transcriptionModel(s.rec.Config); m != "" {
			model = m
		}
	}
	s.mu.Unlock()
	e := s.entry(store.TranscriptionResponseID(ev.ItemID), store.LedgerTranscription, model, "completed", tu.Flat())
	inserted, err := s.record(ctx, e)
	if !inserted && err == nil {
		return // a duplicate: metered already
	}
	s.g.Metrics.metered(e.Model, e.Tier, e.Status, e.CostNanoUSD, false)
	s.mu.Lock()
	s.totals.Usage = s.totals.Usage.Add(e.Usage)
	s.totals.CostNanoUSD += e.CostNanoUSD
	s.totals.Transcriptions++
	s.mu.Unlock()
	s.chargeTranscription(ctx, e)
}

// chargeTranscription charges a transcription's cost to the session's
// budget accounts and ends the session once one is spent.
func (s *Session) chargeTranscription(ctx context.Context, e store.LedgerEntry) {
	accounts := Accounts(s.rec, s.tier, s.g.now())
	if len(accounts) == 0 || e.CostNanoUSD <= 0 {
		return
	}
	err := s.g.Store.Charge(ctx, accounts, e.CostNanoUSD)
	s.g.local.done(accounts, 0, e.CostNanoUSD)
	if err != nil {
		s.g.logger().Error("transcription charge failed", "session_id", s.rec.ID, "response_id", e.ResponseID, "err", err)
		return
	}
	held := s.heldGrants()
	for _, a := range accounts {
		spent, _, err := s.g.Store.Spent(ctx, a.Key)
		if err != nil {
			s.g.logger().Debug("budget read failed", "session_id", s.rec.ID, "err", err)
			return
		}
		if spent+held >= a.LimitNano {
			s.g.Metrics.Refused("budget", s.tier.Name, s.rec.Model)
			s.g.audit(ctx, s.rec, "limit", map[string]any{"limit": "budget", "account": accountKind(a.Key), "spent_nanousd": spent})
			s.end(budgetSpent())
			return
		}
	}
}

// heldGrants sums the budget this session holds for responses sent or
// running.
func (s *Session) heldGrants() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.pending {
		n += r.granted
	}
	for _, r := range s.byResp {
		n += r.granted
	}
	return n
}
