package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// errUpstreamGone ends the client pump when upstream cannot be written to;
// the upstream pump reports the actual cause.
var errUpstreamGone = errors.New("relay: upstream write failed")

// pinOrFail applies the pinned config; on failure it returns the cause that
// ends the session before any client event was relayed.
func (s *session) pinOrFail() (endCause, bool) {
	if err := s.pin(); err != nil {
		s.log.Warn("pinning the session config failed", "err", err)
		return endCause{by: byGateway, code: websocket.StatusInternalError, reason: "upstream_unavailable",
			message: "the upstream session could not be configured"}, false
	}
	return endCause{}, true
}

// pin waits for upstream's session.created, sends the pinned config with a
// session.update, waits for its session.updated, and gives the client a
// session.created carrying the effective config. The gateway's own
// session.updated is not forwarded; other events that arrive meanwhile are
// forwarded after session.created, in order.
func (s *session) pin() error {
	ctx, cancel := context.WithTimeout(s.ctx, pinTimeout)
	defer cancel()
	// A terminate during pinning interrupts it (cancelling a read closes
	// the upstream socket, which is ending anyway).
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	created, err := s.readUpstreamUntil(ctx, realtime.TypeSessionCreated, "", nil)
	if err != nil {
		return err
	}
	ev, err := realtime.DecodeSessionEvent(created)
	if err != nil {
		return err
	}
	if m := realtime.SessionModel(ev.Session); m != "" {
		s.setModel(m)
	}
	var held [][]byte
	if len(s.rec.Config) > 0 {
		cfg, err := s.pinnedConfig()
		if err != nil {
			return fmt.Errorf("pinned config: %w", err)
		}
		id := realtime.NewID("vg_pin_")
		upd, _ := json.Marshal(map[string]any{"type": realtime.TypeSessionUpdate, "event_id": id, "session": cfg})
		if err := s.up.Write(ctx, websocket.MessageText, upd); err != nil {
			return fmt.Errorf("send pinned config: %w", err)
		}
		updated, err := s.readUpstreamUntil(ctx, realtime.TypeSessionUpdated, id, &held)
		if err != nil {
			return err
		}
		u, err := realtime.DecodeSessionEvent(updated)
		if err != nil {
			return err
		}
		if m := realtime.SessionModel(u.Session); m != "" {
			s.setModel(m)
		}
		ev.Session = u.Session
		created, _ = json.Marshal(ev)
	}
	s.noteSessionConfig(created)
	s.writeClient(created)
	for _, f := range held {
		s.writeClient(f)
	}
	return nil
}

// readUpstreamUntil reads upstream until an event of type want; an error
// event answering eventID fails. Other events are appended to held (or
// dropped when held is nil, before session.created).
func (s *session) readUpstreamUntil(ctx context.Context, want, eventID string, held *[][]byte) ([]byte, error) {
	for {
		_, data, err := s.up.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("read upstream: %w", err)
		}
		s.r.Metrics.frame(dirUpstream, len(data))
		typ, _ := realtime.EventType(data)
		switch {
		case typ == want:
			return data, nil
		case typ == realtime.TypeError && eventID != "":
			if e, err := realtime.DecodeErrorEvent(data); err == nil && e.Error.EventID == eventID {
				return nil, fmt.Errorf("upstream refused the pinned config: %s: %s", e.Error.Code, e.Error.Message)
			}
		}
		if held != nil {
			*held = append(*held, data)
		}
	}
}

// pinnedConfig is the session object of the pinning session.update: the
// GA config with its type, or its flat beta translation.
func (s *session) pinnedConfig() (json.RawMessage, error) {
	if s.conn.Beta {
		return toBeta(s.rec.Config)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(s.rec.Config, &m); err != nil {
		return nil, err
	}
	if _, ok := m["type"]; !ok {
		m["type"] = json.RawMessage(`"realtime"`)
	}
	return json.Marshal(m)
}

func (s *session) setModel(m string) {
	s.mu.Lock()
	s.model = m
	s.mu.Unlock()
}

// clientPump relays client frames upstream, through the Governor when one
// is set. It returns the client's read error, or errUpstreamGone.
func (s *session) clientPump() error {
	for {
		typ, data, err := s.client.Read(s.ctx)
		if err != nil {
			return err
		}
		s.lastClient.Store(time.Now().UnixNano())
		s.r.Metrics.frame(dirClient, len(data))
		if s.gov != nil {
			et, _ := realtime.EventType(data)
			fwd, refusal := s.gov.ClientEvent(s.ctx, et, data)
			if fwd == nil {
				if refusal != nil {
					s.writeClient(refusal)
				}
				continue
			}
			data = fwd
		}
		if err := s.up.Write(s.ctx, typ, data); err != nil {
			return fmt.Errorf("%w: %w", errUpstreamGone, err)
		}
	}
}

// upstreamPump relays upstream frames to the client and tracks responses:
// response.created marks one in flight, response.done meters it. It keeps
// reading after the client is gone, so abandoned responses are metered.
func (s *session) upstreamPump() error {
	for {
		typ, data, err := s.up.Read(s.ctx)
		if err != nil {
			return err
		}
		s.r.Metrics.frame(dirUpstream, len(data))
		switch et, _ := realtime.EventType(data); et {
		case realtime.TypeResponseCreated:
			if ev, err := realtime.DecodeResponseEvent(data); err == nil {
				s.responseStarted(ev.Response.ID)
				if w, ok := s.gov.(ResponseWatcher); ok {
					w.ResponseCreated(s.ctx, ev.Response.ID)
				}
			}
		case realtime.TypeResponseDone:
			if ev, err := realtime.DecodeResponseEvent(data); err == nil {
				if w, ok := s.gov.(SettleWatcher); ok {
					w.ResponseFinishing(ev.Response.ID)
				}
				s.responseDone(ev.Response)
			} else {
				s.log.Error("undecodable response.done", "err", err)
				s.r.Metrics.error("bad_response_done")
			}
		case realtime.TypeSessionUpdated, typeTranscriptionSessionUpdated, typeTranscriptionSessionCreated:
			s.noteSessionConfig(data) // transcribe.go
		case realtime.TypeInputTranscriptionCompleted:
			s.transcriptionCompleted(data)
		}
		if s.clientGone.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, clientWriteTimeout)
		err = s.client.Write(ctx, typ, data)
		cancel()
		if err != nil {
			s.clientGone.Store(true)
		}
	}
}

func (s *session) responseStarted(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) == 0 {
		s.idle = make(chan struct{})
	}
	s.inflight[id] = true
}

// responseDone queues the ledger entry of a finished response.
func (s *session) responseDone(resp realtime.Response) {
	s.mu.Lock()
	if s.inflight[resp.ID] {
		delete(s.inflight, resp.ID)
		if len(s.inflight) == 0 {
			close(s.idle)
		}
	}
	model := s.model
	s.mu.Unlock()

	var u store.Usage
	if resp.Usage != nil {
		u = resp.Usage.Flat()
	}
	cost, ok := s.r.prices().Cost(model, u)
	if !ok {
		s.r.Metrics.error("unpriced_model")
		s.log.Warn("no price for model; response recorded at zero cost", "model", model, "response_id", resp.ID)
	}
	s.meterCh <- store.LedgerEntry{
		SessionID: s.rec.ID, ResponseID: resp.ID, User: s.rec.User, AppKeyID: s.rec.AppKeyID,
		Tier: s.rec.Tier, Model: model, Status: resp.Status, Usage: u, CostNanoUSD: cost, At: s.r.now(),
	}
}

// meterLoop records ledger entries off the relay path, retrying a failing
// store with backoff; it drains meterCh until the supervisor closes it.
func (s *session) meterLoop() {
	for e := range s.meterCh {
		s.meter(e)
		if w, ok := s.gov.(SettleWatcher); ok {
			w.ResponseSettled(e.ResponseID)
		}
	}
}

// meter records one ledger entry and, when it is new, accounts for it.
func (s *session) meter(e store.LedgerEntry) {
	inserted, err := s.record(e)
	if err != nil {
		s.r.Metrics.error("ledger_write_failed")
		s.log.Error("ledger entry not recorded", "response_id", e.ResponseID, "model", e.Model,
			"status", e.Status, "usage", e.Usage, "cost_nanousd", e.CostNanoUSD, "err", err)
		return
	}
	if !inserted {
		return // a duplicate response.done: already metered
	}
	transcription := e.Kind == store.LedgerTranscription
	s.mu.Lock()
	s.usage = s.usage.Add(e.Usage)
	s.cost += e.CostNanoUSD
	if !transcription {
		s.responses++
	}
	s.mu.Unlock()
	if transcription {
		s.transcriptionRecorded(e) // transcribe.go
		return
	}
	s.r.Metrics.response(e.Model, e.Tier, e.Status, e.CostNanoUSD)
	if s.gov != nil {
		s.gov.ResponseDone(s.r.base, e)
	}
}

// record writes one entry, retrying for up to about 30 s unless the relay
// is torn down.
func (s *session) record(e store.LedgerEntry) (bool, error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(s.r.base, 5*time.Second)
		inserted, err := s.r.Store.RecordUsage(ctx, e)
		cancel()
		if err == nil {
			return inserted, nil
		}
		if time.Now().Add(backoff).After(deadline) || s.r.base.Err() != nil {
			return false, fmt.Errorf("relay: record usage: %w", err)
		}
		select {
		case <-time.After(backoff):
		case <-s.r.base.Done():
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
