package relay

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// Input audio transcription metering.
//
// Transcription of input audio (a realtime session with
// audio.input.transcription, or a whole transcription session) is billed
// upstream per conversation.item.input_audio_transcription.completed,
// whose usage is token-billed or duration-billed. The relay records one
// ledger entry per (session, item): Kind store.LedgerTranscription,
// ResponseID "transcription:<item_id>", the transcription model in force
// and its cost; the store's (session, response id) key makes it exactly
// once, so a duplicated event is metered once. Budgets are charged after
// the fact (store.Charge): nothing is reserved before a transcription, so
// a budget can be exceeded by at most one transcription's cost per live
// session, after which the session is closed with budget_exceeded.

// Upstream events that carry the session config, in the GA and beta
// shapes, for tracking the transcription model.
const (
	typeTranscriptionSessionCreated = "transcription_session.created"
	typeTranscriptionSessionUpdated = "transcription_session.updated"
)

// TranscriptionCharger is optionally implemented by a Governor to charge
// the cost of an input audio transcription (which has no reservation) to
// its budgets. TranscriptionDone is called once per transcription recorded
// in the ledger, from the session's metering goroutine.
type TranscriptionCharger interface {
	TranscriptionDone(ctx context.Context, e store.LedgerEntry)
}

// transcription is a session's view of its input transcription model: the
// model in the last session config upstream confirmed (session.created,
// session.updated, or their transcription_session forms), so it follows
// every session.update the firewall let through.
type transcription struct {
	mu    sync.Mutex
	known bool   // a session config was seen
	model string // "" when transcription is off or the model unknown
}

// noteSessionConfig tracks the transcription model of a session.created or
// session.updated frame (GA audio.input.transcription.model or beta
// input_audio_transcription.model). A config that does not mention
// transcription leaves the tracked model as it is; an explicit null turns
// it off.
func (s *session) noteSessionConfig(frame []byte) {
	var ev struct {
		Session json.RawMessage `json:"session"`
	}
	if json.Unmarshal(frame, &ev) != nil {
		return
	}
	model, set := transcriptionModel(ev.Session)
	if !set {
		return
	}
	s.tr.mu.Lock()
	s.tr.known, s.tr.model = true, model
	s.tr.mu.Unlock()
}

// transcriptionModel reads the transcription model of a session object in
// the GA or beta shape; set is false when the object does not say.
func transcriptionModel(session json.RawMessage) (model string, set bool) {
	type spec struct {
		Model string `json:"model"`
	}
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
	var sp *spec
	if json.Unmarshal(raw, &sp) != nil {
		return "", false
	}
	if sp == nil { // null: off
		return "", true
	}
	return sp.Model, true
}

// transcriptionModelNow is the model a transcription completing now is
// billed at: the tracked one, else the pinned config's.
func (s *session) transcriptionModelNow() string {
	s.tr.mu.Lock()
	known, model := s.tr.known, s.tr.model
	s.tr.mu.Unlock()
	if !known || model == "" {
		if m, _ := transcriptionModel(s.rec.Config); m != "" {
			return m
		}
	}
	return model
}

// transcriptionCompleted queues the ledger entry of a completed input
// audio transcription that carries usage. A malformed event or usage is
// logged and counted, never fatal.
func (s *session) transcriptionCompleted(frame []byte) {
	ev, err := realtime.DecodeTranscriptionCompleted(frame)
	if err != nil {
		s.log.Error("undecodable transcription event", "err", err)
		s.r.Metrics.error("bad_transcription_usage")
		return
	}
	if ev.Usage == nil {
		s.log.Debug("transcription without usage; not metered", "item_id", ev.ItemID)
		return
	}
	tu, err := realtime.DecodeTranscriptionUsage(ev.Usage)
	if err != nil {
		s.log.Error("transcription usage not metered", "item_id", ev.ItemID, "err", err)
		s.r.Metrics.error("bad_transcription_usage")
		return
	}
	model := s.transcriptionModelNow()
	u := tu.Flat()
	cost, ok := s.r.prices().Cost(model, u)
	if !ok {
		s.r.Metrics.error("unpriced_model")
		s.log.Warn("no price for transcription model; recorded at zero cost", "model", model, "item_id", ev.ItemID)
	}
	s.meterCh <- store.LedgerEntry{
		SessionID: s.rec.ID, ResponseID: store.TranscriptionResponseID(ev.ItemID), Kind: store.LedgerTranscription,
		User: s.rec.User, AppKeyID: s.rec.AppKeyID, Tier: s.rec.Tier, Model: model, Status: "completed",
		Usage: u, CostNanoUSD: cost, At: s.r.now(),
	}
}

// transcriptionRecorded accounts a transcription entry the ledger has just
// inserted (meter added it to the session totals): the cost metric and the
// governor's budgets.
func (s *session) transcriptionRecorded(e store.LedgerEntry) {
	if m := s.r.Metrics; m != nil {
		m.cost.WithLabelValues(e.Model, e.Tier).Add(float64(e.CostNanoUSD))
	}
	if c, ok := s.gov.(TranscriptionCharger); ok {
		c.TranscriptionDone(s.r.base, e)
	}
}

// TranscriptionDone implements TranscriptionCharger: the cost is charged
// to the session's budget accounts (there was no reservation), and once an
// account's spend plus this session's outstanding response grants reaches
// its limit the session is closed with budget_exceeded: the responses
// settle within their grants, so the account ends over its limit by less
// than this one transcription.
func (v *governor) TranscriptionDone(ctx context.Context, e store.LedgerEntry) {
	accounts := Accounts(v.rec, v.tier, v.g.now())
	if len(accounts) == 0 || e.CostNanoUSD <= 0 {
		return
	}
	// Charge reaches the store once (spooled while it is down); the local
	// view keeps the cost until a read of the store includes it.
	err := v.g.Store.Charge(ctx, accounts, e.CostNanoUSD)
	v.g.local.done(accounts, 0, e.CostNanoUSD)
	if err != nil {
		v.g.logger().Error("transcription charge failed", "session_id", v.rec.ID, "response_id", e.ResponseID, "err", err)
		return
	}
	for _, a := range accounts {
		spent, _, err := v.g.Store.Spent(ctx, a.Key)
		if err != nil {
			v.g.logger().Debug("budget read failed", "session_id", v.rec.ID, "err", err)
			return
		}
		if spent+v.heldGrants() >= a.LimitNano {
			v.g.Metrics.Refused("budget", v.tier.Name, v.rec.Model)
			v.audit(ctx, "limit", map[string]any{"limit": "budget", "account": accountKind(a.Key), "spent_nanousd": spent})
			v.close(CodeBudgetExceeded, "the budget is spent")
			return
		}
	}
}

// heldGrants sums the budget this session holds for responses reserved
// but not yet settled (pending, started, and the standing VAD grant).
func (v *governor) heldGrants() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := v.stand.granted
	for r := range v.unsettled() {
		n += r.granted
	}
	return n
}
