package govern

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// Input audio transcription (a realtime session with
// audio.input.transcription, or a transcription session) is billed
// upstream per conversation.item.input_audio_transcription.completed,
// token- or duration-billed. Each is one ledger entry: Kind
// store.LedgerTranscription, ResponseID "transcription:<item_id>", the
// transcription model in force and its cost; the store's (session,
// response id) key makes it exactly once.
//
// Upstream transcribes every commit on its own, so the governor reserves
// as the audio accumulates: while transcription is on, every append
// that takes the buffer's worst-case transcription cost past what the
// buffer holds reserves the difference (at least five seconds' worth, so
// the store sees one reservation per five seconds of speech, not one per
// frame). An append the budget cannot cover is refused with
// budget_exceeded. At the commit the buffer's holds pass to its item, and
// the item's transcription settles them at its exact cost (a failed one
// releases them). A transcription no hold covers (the model became known
// only after the audio) is charged after the fact.

// transcriptionChunkMs is the least audio one transcription hold covers.
const transcriptionChunkMs = 5000

// transcription is a session's view of its input transcription model: the
// model of the last session config upstream confirmed; guarded by s.mu.
type transcription struct {
	known  bool   // a session config said
	model  string // "" when transcription is off or the model unknown
	pinned string // the pinned config's model, until upstream says
	// buf holds the reservations of the audio in the input buffer, held
	// the sum of their grants; items holds those of committed items
	// awaiting their transcription, by item id.
	buf   []*reservation
	held  int64
	items map[string][]*reservation
}

// modelLocked is the transcription model in force ("" when off); s.mu is
// held.
func (s *Session) trModelLocked() string {
	if s.tr.known {
		return s.tr.model
	}
	return s.tr.pinned
}

// transcriptionBound is the worst-case cost of transcribing ms of audio
// with model: ten audio tokens a second in, ten text tokens a second out
// (and a few more for each), or the seconds rounded up plus one when the
// model is billed by duration; 0 when the model has no price.
func (s *Session) transcriptionBound(model string, ms int64) int64 {
	tokens := (ms+99)/100 + itemTokens
	u := store.Usage{InputAudioTokens: tokens, InputTokens: tokens, OutputTextTokens: tokens + 4*itemTokens,
		OutputTokens: tokens + 4*itemTokens, AudioSeconds: (ms+999)/1000 + 1}
	cost, ok := s.g.prices().Cost(model, u)
	if !ok {
		return 0
	}
	return cost + 1
}

// holdTranscription reserves for the transcription of the audio buffered
// so far when what the buffer holds does not cover it. It refuses the
// append (eventID) when the budget cannot.
func (s *Session) holdTranscription(ctx context.Context, eventID string) *Refusal {
	s.mu.Lock()
	model := s.trModelLocked()
	if model == "" {
		s.mu.Unlock()
		return nil
	}
	per := s.in.per100ms
	if per <= 0 {
		per = pcm16Per100ms
	}
	ms := s.in.bufBytes * 100 / per
	need := s.transcriptionBound(model, ms) - s.tr.held
	if need <= 0 {
		s.mu.Unlock()
		return nil
	}
	want := max(need, s.transcriptionBound(model, ms+transcriptionChunkMs)-s.tr.held)
	s.seq++
	id := fmt.Sprintf("%s/t%d", s.rec.ID, s.seq)
	s.mu.Unlock()

	accounts := Accounts(s.rec, s.tier, s.g.now())
	if len(accounts) == 0 {
		return nil
	}
	res, local, ref := s.hold(ctx, id, accounts, want, need, eventID)
	if ref != nil {
		return ref
	}
	if res.Granted == 0 {
		ref := budgetExceeded(eventID)
		ref.Message = "the remaining budget cannot afford transcribing more audio"
		s.refused(ctx, ref, map[string]any{"remaining_nanousd": res.Remaining, "local": local, "transcription": true})
		s.mu.Lock()
		outstanding := len(s.pending) + len(s.byResp)
		s.mu.Unlock()
		if !local && outstanding == 0 {
			s.end(budgetSpent())
		}
		return ref
	}
	s.g.Metrics.reservedAdd(s.tier.Name, model, res.Granted)
	r := &reservation{id: id, local: local, granted: res.Granted, accounts: accounts}
	s.mu.Lock()
	s.tr.buf = append(s.tr.buf, r)
	s.tr.held += res.Granted
	s.mu.Unlock()
	return nil
}

// transcriptionCommitted passes the buffer's holds to the committed item.
// s.mu is held.
func (s *Session) transcriptionCommittedLocked(itemID string) {
	if len(s.tr.buf) == 0 {
		return
	}
	if s.tr.items == nil {
		s.tr.items = map[string][]*reservation{}
	}
	s.tr.items[itemID] = append(s.tr.items[itemID], s.tr.buf...)
	s.tr.buf, s.tr.held = nil, 0
}

// releaseTranscriptionHolds gives back holds whose audio will not be
// transcribed (a cleared buffer, a failed transcription).
func (s *Session) releaseTranscriptionHolds(ctx context.Context, holds []*reservation) {
	for _, r := range holds {
		s.release(ctx, r)
	}
}

// takeItemHolds removes and returns the holds of item.
func (s *Session) takeItemHolds(itemID string) []*reservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.tr.items[itemID]
	delete(s.tr.items, itemID)
	s.setIdleLocked()
	return h
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
		if s.tr.pinned != "" {
			model = s.tr.pinned
		}
	}
	s.mu.Unlock()
	holds := s.takeItemHolds(ev.ItemID)
	e := s.entry(store.TranscriptionResponseID(ev.ItemID), store.LedgerTranscription, model, "completed", tu.Flat())
	inserted, err := s.record(ctx, e)
	if !inserted && err == nil {
		s.releaseTranscriptionHolds(ctx, holds)
		return // a duplicate: metered already
	}
	s.g.Metrics.metered(e.Model, e.Tier, e.Status, e.CostNanoUSD, false)
	s.mu.Lock()
	s.totals.Usage = s.totals.Usage.Add(e.Usage)
	s.totals.CostNanoUSD += e.CostNanoUSD
	s.totals.Transcriptions++
	s.mu.Unlock()
	s.chargeTranscription(ctx, e, holds)
}

// chargeTranscription settles a transcription's holds at its exact cost
// (the first hold takes the cost, the others are released), or charges
// the cost when nothing held for it, and ends the session once its
// budget cannot pay for a minimal response any more.
func (s *Session) chargeTranscription(ctx context.Context, e store.LedgerEntry, holds []*reservation) {
	if len(holds) > 0 {
		s.settle(ctx, holds[0], e.CostNanoUSD)
		s.releaseTranscriptionHolds(ctx, holds[1:])
	} else if e.CostNanoUSD > 0 {
		s.settle(ctx, &reservation{}, e.CostNanoUSD)
	}
	s.mu.Lock()
	outstanding := len(s.pending) + len(s.byResp)
	in := s.inputLocked()
	s.mu.Unlock()
	if outstanding > 0 {
		return // the response's settlement decides
	}
	if accounts := Accounts(s.rec, s.tier, s.g.now()); len(accounts) > 0 && s.exhausted(ctx, accounts, in) {
		s.g.Metrics.Refused("budget", s.tier.Name, s.rec.Model)
		s.end(budgetSpent())
	}
}
