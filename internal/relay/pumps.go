package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

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
	upd, id, err := s.gov.Pin(ev.Session)
	if err != nil {
		return err
	}
	var held [][]byte
	if upd != nil {
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
func (s *session) readUpstreamUntil(ctx context.Context, want, eventID string, held *[][]byte) ([]byte, error) {
	for {
		_, data, err := s.up.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("read upstream: %w", err)
		}
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
		typ, data, err := readInto(s.ctx, s.client, &buf)
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
			if err := s.up.Write(s.ctx, typ, fwd); err != nil {
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
		typ, data, err := readInto(s.ctx, s.up, &buf)
		if err != nil {
			return err
		}
		s.read(sideUpstream)
		s.r.Metrics.frame(dirUpstream, len(data))
		et, _ := realtime.UpstreamEventType(data)
		data = s.gov.Upstream(s.ctx, et, data)
		if !s.clientGone.Load() && data != nil {
			ctx, cancel := context.WithTimeout(s.ctx, clientWriteTimeout)
			err = s.client.Write(ctx, typ, data)
			cancel()
			if err != nil {
				s.clientGone.Store(true)
			}
		}
		// Not busy before the check: an ending decided while this frame was
		// handled is either seen here or, decided after, done by drain.
		s.busy[sideUpstream].Store(false)
		s.endIfDue()
	}
}

// readInto reads the next message of c into buf, reusing its memory, and
// returns it as a slice of buf: valid until the next call. A pump is done
// with a frame (forwarded; governed — the governor copies what it keeps)
// before it reads the next. The connection's read limit applies.
func readInto(ctx context.Context, c *websocket.Conn, buf *bytes.Buffer) (websocket.MessageType, []byte, error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	return typ, buf.Bytes(), nil
}
