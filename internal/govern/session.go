package govern

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// Hooks are what a transport engine gives the Session governor of one
// connection: how to reach each side and how to end the session. Every
// hook must be safe for concurrent use.
type Hooks struct {
	// Beta is set when the client speaks the beta interface (flat session
	// shape, OpenAI-Beta: realtime=v1).
	Beta bool
	// Upstream writes a gateway-made client event upstream (a mediated
	// response.create, a response.cancel); required.
	Upstream func(ctx context.Context, frame []byte) error
	// Client writes a gateway-made server event to the client (a
	// non-fatal refusal of a turn the server's turn detection started);
	// nil drops them.
	Client func(frame []byte)
	// Sideband is set when the governor sees the session through a
	// sideband (a WebRTC call): the client's events reach upstream
	// directly, Client is never called, and the governor corrects after
	// the fact (sideband.go).
	Sideband bool
	// End ends the session as the gateway because of r (a fatal
	// refusal): the client gets r.Event() and the session closes after its
	// outstanding responses are settled. Later calls are ignored. nil
	// means the governor never ends a session by itself.
	End func(r *Refusal)
}

// Session governs one live connection of a session: its firewall, its
// per-session rate limits, its budget reservations and input estimate,
// the mediation of server turn detection, and the metering of everything
// upstream bills. The engine calls Client for every client event, Upstream
// for every upstream event, and Close once at the end; they may run
// concurrently (one client pump, one upstream pump).
type Session struct {
	g    *Governor
	rec  *store.Session
	tier policy.Tier
	fw   policy.Firewall
	h    Hooks

	mu        sync.Mutex
	model     string
	events    gcra // client events per second
	responses gcra // client response.create per minute
	seq       int
	seeded    bool
	gone      bool // the client left: no new turns, started responses are cancelled

	pending []*reservation          // forwarded response.create, not yet created or rejected (FIFO)
	byResp  map[string]*reservation // started upstream, not yet done
	idle    chan struct{}           // closed while nothing is outstanding

	in          inputEstimate
	vad         turnDetection
	corrections int  // consecutive sideband corrections (sideband.go)
	clearing    bool // Abandon cleared upstream's input buffer: cleared not seen yet

	totals Totals
	tr     transcription

	refusals refusalLog // bounds the audit rows this client can cause
}

// Totals are what a session was metered so far on this connection.
type Totals struct {
	Usage          store.Usage
	CostNanoUSD    int64
	Responses      int
	Transcriptions int
}

// Open returns the governor of one live connection of rec.
func (g *Governor) Open(rec *store.Session, h Hooks) *Session {
	g.init()
	t := g.Tier(rec.Tier)
	s := &Session{
		g: g, rec: rec, tier: t, h: h,
		fw:     policy.Firewall{Tier: t, Pinned: rec.Config, Beta: h.Beta},
		model:  rec.Model,
		byResp: map[string]*reservation{},
		idle:   make(chan struct{}),
	}
	close(s.idle)
	s.in.base = len(rec.Config)/4 + 1
	s.in.per100ms = configFormat(rec.Config)
	s.in.sessionMaxOut = configMaxOutput(rec.Config)
	s.tr.pinned, _ = transcriptionModel(rec.Config)
	g.liveM.Lock()
	g.live[rec.ID] = s
	g.liveM.Unlock()
	return s
}

// Record is the governed session's record (read-only).
func (s *Session) Record() *store.Session { return s.rec }

// WarnLead is how long before max_session_seconds the session_expiring
// warning goes out, by the session's tier.
func (s *Session) WarnLead(maxSeconds int) time.Duration { return s.tier.WarnLead(maxSeconds) }

// Totals returns what was metered on this connection so far.
func (s *Session) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totals
}

// Model is the session's model as upstream last reported it.
func (s *Session) Model() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model
}

func (s *Session) end(r *Refusal) {
	if s.h.End != nil {
		s.h.End(r)
	}
}

func (s *Session) toClient(frame []byte) {
	if s.h.Client != nil {
		s.h.Client(frame)
	}
}

func (s *Session) refused(ctx context.Context, r *Refusal, detail map[string]any) {
	s.g.Metrics.Refused(r.Limit, s.tier.Name, s.rec.Model)
	if detail == nil {
		detail = map[string]any{}
	}
	detail["limit"] = r.Limit
	s.auditBounded(ctx, "limit", r.Limit, detail)
}

// Client decides on one client frame before it goes upstream: it returns
// the frame to forward (possibly rewritten), or nil and the error event to
// send the client instead.
func (s *Session) Client(ctx context.Context, frame []byte) (forward, reply []byte) {
	s.mu.Lock()
	gone := s.gone
	s.mu.Unlock()
	if gone {
		return nil, nil // the session is ending: nothing new starts
	}
	s.seed(ctx)
	d := s.fw.Inspect(frame)
	switch d.Action {
	case policy.Refuse:
		s.g.Metrics.Refused(d.Code, s.tier.Name, s.rec.Model)
		s.auditBounded(ctx, "refusal", d.Code, map[string]any{"code": d.Code, "event_type": d.Type, "param": d.Param})
		return nil, d.ErrorEvent()
	case policy.Rewrite:
		frame = d.Frame
		// Pinned fields kept their values; the client is told when it
		// asked for something else than an SDK's defaults.
		reply = d.KeptNotice()
		s.auditBounded(ctx, "kept", "", map[string]any{"fields": d.Kept})
	}
	if n := s.tier.Rates.EventsPerSecond; n > 0 {
		if r := s.limit(ctx, &s.events, "events_per_second", store.PerSecond(n), d.EventID); r != nil {
			return nil, r.Event()
		}
	}
	switch d.Type {
	case realtime.TypeSessionUpdate, "transcription_session.update":
		s.auditBounded(ctx, "session_update", "", map[string]any{"changed_fields": d.ChangedFields})
		frame = s.sessionUpdate(frame)
	case realtime.TypeResponseCreate:
		if n := s.tier.Rates.ResponsesPerMinute; n > 0 {
			if r := s.limit(ctx, &s.responses, "responses_per_minute", store.PerMinute(n), d.EventID); r != nil {
				return nil, r.Event()
			}
		}
		fwd, ref := s.reserve(ctx, frame, d.EventID, false)
		if ref != nil {
			return nil, ref.Event()
		}
		return fwd, nil
	case "input_audio_buffer.append":
		s.mu.Lock()
		s.in.append(frame)
		s.mu.Unlock()
		if ref := s.holdTranscription(ctx, d.EventID); ref != nil {
			return nil, ref.Event()
		}
		return frame, nil
	case "input_audio_buffer.commit":
		s.mu.Lock()
		s.in.commit()
		s.vad.clientCommits++
		s.mu.Unlock()
		return frame, nil
	case "input_audio_buffer.clear":
		s.mu.Lock()
		s.in.bufBytes = 0
		s.mu.Unlock()
		return frame, nil
	}
	s.mu.Lock()
	s.in.addText(len(frame))
	s.mu.Unlock()
	return frame, reply // reply: the kept-fields notice of a rewritten session.update
}

// Upstream sees one upstream frame before it reaches the client and
// returns the frame to forward (possibly rewritten). A response.done or a
// transcription is recorded in the ledger and settled on the budgets
// before Upstream returns, so a client reacting to it meets settled
// accounts, and a crash after the client saw it loses nothing.
func (s *Session) Upstream(ctx context.Context, eventType string, frame []byte) []byte {
	switch eventType {
	case realtime.TypeSessionCreated, realtime.TypeSessionUpdated, "transcription_session.created", "transcription_session.updated":
		return s.sessionConfig(ctx, frame)
	case "input_audio_buffer.committed":
		s.committed(ctx, frame)
	case "input_audio_buffer.cleared":
		s.mu.Lock()
		s.in.bufBytes = 0
		holds := s.tr.buf
		s.tr.buf, s.tr.held = nil, 0
		s.clearing = false
		s.setIdleLocked()
		s.mu.Unlock()
		s.releaseTranscriptionHolds(ctx, holds)
	case "conversation.item.input_audio_transcription.failed":
		var ev struct {
			ItemID string `json:"item_id"`
		}
		if json.Unmarshal(frame, &ev) == nil {
			s.releaseTranscriptionHolds(ctx, s.takeItemHolds(ev.ItemID))
		}
	case realtime.TypeResponseCreated:
		s.responseCreated(ctx, frame)
	case realtime.TypeResponseDone:
		s.responseDone(ctx, frame)
	case realtime.TypeError:
		return s.upstreamError(ctx, frame)
	case realtime.TypeInputTranscriptionCompleted:
		s.transcriptionCompleted(ctx, frame)
	}
	return frame
}

// Outstanding reports how many billed things upstream owes the session:
// responses sent and not done (asked for and not yet created or rejected,
// or running) and committed audio awaiting its transcription; and a
// channel closed once there are none.
func (s *Session) Outstanding() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outstandingLocked(), s.idle
}

func (s *Session) outstandingLocked() int {
	n := len(s.pending) + len(s.byResp) + len(s.tr.items)
	if s.clearing {
		n++ // a commit upstream made before our clear is still to be seen
	}
	return n
}

// Quiesce stops new work while the session drains (the gateway shuts
// down): no new turn starts and client events are dropped, while the
// responses already running finish and are metered.
func (s *Session) Quiesce() {
	s.mu.Lock()
	s.gone = true
	s.vad.waiting = 0
	s.mu.Unlock()
}

// Abandon is called when the client is gone while the upstream side stays
// open to settle: no new turn starts, running responses are cancelled
// upstream, and responses still being created are cancelled when
// upstream creates them. It reports whether anything is outstanding (wait
// on Outstanding's channel then).
func (s *Session) Abandon(ctx context.Context) bool {
	s.mu.Lock()
	s.gone = true
	s.vad.waiting = 0
	var ids []string
	for id := range s.byResp {
		ids = append(ids, id)
	}
	// Audio upstream has not committed yet could still be committed (and
	// its transcription billed) by turn detection: clear it, and wait for
	// input_audio_buffer.cleared, which comes after any such commit.
	clear := s.in.bufBytes > 0 && !s.h.Sideband
	if clear {
		s.clearing = true
		s.setIdleLocked()
	}
	n := s.outstandingLocked()
	s.mu.Unlock()
	if clear {
		ev, _ := json.Marshal(map[string]string{"type": "input_audio_buffer.clear", "event_id": realtime.NewID("vg_clear_")})
		if err := s.h.Upstream(ctx, ev); err != nil {
			s.mu.Lock()
			s.clearing = false
			s.setIdleLocked()
			n = s.outstandingLocked()
			s.mu.Unlock()
		}
	}
	for _, id := range ids {
		s.cancel(ctx, id)
	}
	return n > 0
}

func (s *Session) cancel(ctx context.Context, responseID string) {
	ev, _ := json.Marshal(map[string]string{"type": realtime.TypeResponseCancel, "event_id": realtime.NewID("vg_cancel_"), "response_id": responseID})
	if err := s.h.Upstream(ctx, ev); err != nil {
		s.g.logger().Debug("cancel of an abandoned response not sent", "session_id", s.rec.ID, "err", err)
	}
}

// Close releases what the session still holds: reservations of responses
// that never started or never finished (their response.done never came)
// are released. Call it once, after the last upstream event.
func (s *Session) Close(ctx context.Context) {
	s.mu.Lock()
	var held []*reservation
	held = append(held, s.pending...)
	for id, r := range s.byResp {
		held = append(held, r)
		s.g.logger().Warn("response never finished upstream; its reservation is released unmetered", "session_id", s.rec.ID, "response_id", id)
		s.g.Metrics.error("response_not_finished")
	}
	held = append(held, s.tr.buf...)
	for _, h := range s.tr.items {
		held = append(held, h...)
	}
	s.pending, s.byResp = nil, map[string]*reservation{}
	s.tr.buf, s.tr.held, s.tr.items = nil, 0, nil
	s.setIdleLocked()
	s.mu.Unlock()
	for _, r := range held {
		s.release(ctx, r)
	}
	s.flushRefusals(ctx)
	s.g.liveM.Lock()
	if s.g.live[s.rec.ID] == s {
		delete(s.g.live, s.rec.ID)
	}
	s.g.liveM.Unlock()
}

// setIdleLocked keeps idle consistent with what is outstanding; s.mu is
// held.
func (s *Session) setIdleLocked() {
	n := s.outstandingLocked()
	select {
	case <-s.idle:
		if n > 0 {
			s.idle = make(chan struct{})
		}
	default:
		if n == 0 {
			close(s.idle)
		}
	}
}

// limit applies one per-session rate limit to the event eventID; a
// refusal is counted and audited.
func (s *Session) limit(ctx context.Context, g *gcra, name string, l store.Limit, eventID string) *Refusal {
	s.mu.Lock()
	ok, retry := g.allow(s.g.now(), l)
	s.mu.Unlock()
	if ok {
		return nil
	}
	r := rateLimited(name, retry, "rate limit %s exceeded; retry after %.1f s", name, retry.Seconds())
	r.EventID = eventID
	s.refused(ctx, r, map[string]any{"retry_after_ms": retry.Milliseconds()})
	return r
}

// gcra is a per-session GCRA limiter. A session lives on one instance,
// so its limits need no shared store.
type gcra struct{ tat time.Time }

func (g *gcra) allow(now time.Time, l store.Limit) (bool, time.Duration) {
	interval := l.Period / time.Duration(l.Rate)
	tat := g.tat
	if tat.Before(now) {
		tat = now
	}
	allowAt := tat.Add(-time.Duration(l.Burst-1) * interval)
	if now.Before(allowAt) {
		return false, allowAt.Sub(now)
	}
	g.tat = tat.Add(interval)
	return true, 0
}
