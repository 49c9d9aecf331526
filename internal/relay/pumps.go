package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
)

// errUpstreamGone ends the client pump when upstream cannot be written to;
// the upstream pump reports the actual cause.
var errUpstreamGone = errors.New("relay: upstream write failed")

// pinOrFail applies the pinned config; on failure it returns the cause that
// ends the session before any client event was relayed.
func (s *session) pinOrFail() (endCause, bool) {
	if err := s.pin(); err != nil {
		s.log.Warn("pinning the session config failed", "err", err)
		c := gatewayEnd("upstream_unavailable", "the upstream session could not be configured")
		return c, false
	}
	return endCause{}, true
}

// pin waits for upstream's session.created, sends the governor's pinning
// session.update, waits for its session.updated, and gives the client a
// session.created carrying the effective config (as the governor shows
// it). The gateway's own session.updated is not forwarded; other events
// that arrive meanwhile are forwarded after session.created, in order.
func (s *session) pin() error {
	ctx, cancel := context.WithTimeout(s.ctx, pinTimeout)
	// Pinning is bounded by a read deadline; a terminate during pinning
	// interrupts a read it waits in by moving the deadline to now (the
	// session is ending anyway). Only while pinning: once pinned, the
	// session ends as its terminate says, settling upstream first, so the
	// pumps' reads must keep no deadline. The lock orders the interrupt
	// against the reset.
	var mu sync.Mutex
	pinning := true
	_ = s.up.c.SetReadDeadline(time.Now().Add(pinTimeout))
	defer func() {
		mu.Lock()
		pinning = false
		_ = s.up.c.SetReadDeadline(time.Time{})
		mu.Unlock()
		cancel()
	}()
	go func() {
		select {
		case <-s.stopping:
			mu.Lock()
			if pinning {
				_ = s.up.c.SetReadDeadline(time.Now())
			}
			mu.Unlock()
		case <-ctx.Done():
		}
	}()
	created, err := s.readUpstreamUntil(realtime.TypeSessionCreated, "", nil)
	if err != nil {
		return err
	}
	ev, err := realtime.DecodeSessionEvent(created)
	if err != nil {
		return err
	}
	upd, id, err := s.gov.Pin(ev.Session)
	if err != nil {
		return err
	}
	var held [][]byte
	if upd != nil {
		if err := s.up.writeCtx(ctx, gws.TextMessage, upd, pinTimeout); err != nil {
			return fmt.Errorf("send pinned config: %w", err)
		}
		updated, err := s.readUpstreamUntil(realtime.TypeSessionUpdated, id, &held)
		if err != nil {
			return err
		}
		u, err := realtime.DecodeSessionEvent(updated)
		if err != nil {
			return err
		}
		ev.Session = u.Session
		created, _ = json.Marshal(ev)
	}
	s.writeClient(s.gov.Upstream(ctx, realtime.TypeSessionCreated, created))
	for _, f := range held {
		et, _ := realtime.UpstreamEventType(f)
		s.writeClient(s.gov.Upstream(ctx, et, f))
	}
	s.endIfDue()
	return nil
}

// readUpstreamUntil reads upstream until an event of type want; an error
// event answering eventID fails. Other events are appended to held (or
// dropped when held is nil, before session.created).
func (s *session) readUpstreamUntil(want, eventID string, held *[][]byte) ([]byte, error) {
	var buf bytes.Buffer
	for {
		_, frame, err := s.up.read(&buf)
		if err != nil {
			return nil, fmt.Errorf("read upstream: %w", err)
		}
		data := bytes.Clone(frame) // kept: returned and held frames outlive the read
		s.r.Metrics.frame(dirUpstream, len(data))
		typ, _ := realtime.UpstreamEventType(data)
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

// clientPump relays client frames upstream through the governor. It
// returns the client's read error, or errUpstreamGone. Once the session is
// ending, client frames are read and dropped.
func (s *session) clientPump() error {
	var buf bytes.Buffer // one read buffer per connection, reused for every frame
	for {
		s.busy[sideClient].Store(false)
		typ, data, err := s.client.read(&buf)
		if err != nil {
			return err
		}
		s.read(sideClient)
		s.lastClient.Store(time.Now().UnixNano())
		s.r.Metrics.frame(dirClient, len(data))
		select {
		case <-s.stopping:
			continue
		default:
		}
		fwd, reply := s.gov.Client(s.ctx, data)
		if reply != nil {
			// Before forwarding: a notice about a rewritten event reaches
			// the client before upstream's answer to it.
			s.writeClient(reply)
		}
		if fwd != nil {
			if err := s.up.write(typ, fwd, clientWriteTimeout); err != nil {
				return fmt.Errorf("%w: %w", errUpstreamGone, err)
			}
		}
		s.endIfDue()
	}
}

// upstreamPump relays upstream frames to the client through the governor,
// which meters what they bill before they are forwarded. It keeps reading
// after the client is gone, so abandoned responses are metered.
func (s *session) upstreamPump() error {
	var buf bytes.Buffer // one read buffer per connection, reused for every frame
	for {
		typ, data, err := s.up.read(&buf)
		if err != nil {
			return err
		}
		s.read(sideUpstream)
		s.r.Metrics.frame(dirUpstream, len(data))
		et, _ := realtime.UpstreamEventType(data)
		data = s.gov.Upstream(s.ctx, et, data)
		if !s.clientGone.Load() && data != nil {
			if err := s.client.write(typ, data, clientWriteTimeout); err != nil {
				s.clientGone.Store(true)
			}
		}
		// Not busy before the check: an ending decided while this frame was
		// handled is either seen here or, decided after, done by drain.
		s.busy[sideUpstream].Store(false)
		s.endIfDue()
	}
}
