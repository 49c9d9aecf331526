package relay

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	gws "github.com/gorilla/websocket"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// Who ended a session.
const (
	byClient   = "client"
	byUpstream = "upstream"
	byGateway  = "gateway"
)

// endCause says why and how a session ends.
type endCause struct {
	by      string
	code    websocket.StatusCode
	reason  string // close reason; for the gateway, the error code
	message string // gateway only: the error event's message
}

// gatewayEnd is the cause of a gateway ending with code: an error event
// with the code, then a close with 1001 when the gateway shuts down, 1011
// when upstream failed, 1008 (policy) otherwise. The state the session
// record keeps is govern.EndingState's.
func gatewayEnd(code, message string) endCause {
	close := websocket.StatusPolicyViolation
	switch code {
	case "going_away":
		close = websocket.StatusGoingAway
	case "upstream_unavailable":
		close = websocket.StatusInternalError
	}
	return endCause{by: byGateway, code: close, reason: code, message: message}
}

// session is one live connection: the two sockets, its governor, and the
// state both pumps share. Its supervisor (run) owns every goroutine it
// starts.
type session struct {
	r      *Relay
	rec    *store.Session
	conn   Conn
	client *wsConn
	up     *wsConn
	log    *slog.Logger
	gov    *govern.Session

	ctx    context.Context // the session's work; cancelled at the very end, which cuts both sockets
	cancel context.CancelFunc

	kill       chan endCause // buffered 1: the first terminate wins
	stopping   chan struct{} // closed by the first terminate
	stopOnce   sync.Once
	clientDone chan error // buffered 1
	upDone     chan error // buffered 1

	clientGone atomic.Bool
	lastClient atomic.Int64 // unix nanos of the last client frame
	// Per side (sideClient, sideUpstream): when its pump last read a frame,
	// and whether it is handling one now (not reading, so a pong waits).
	readAt [2]atomic.Int64
	busy   [2]atomic.Bool
	// pinging: the relay's ping loop pings this session (its pumps run);
	// pingState is that loop's own.
	pinging   atomic.Bool
	pingState [2]pingSide
	started   time.Time
	// ending holds a governor's fatal refusal until the pump that caused it
	// has forwarded the frame at hand: the event that spent the budget
	// reaches the client before the error event and the close.
	ending atomic.Pointer[endCause]
}

func (r *Relay) newSession(c Conn, client, up *wsConn, log *slog.Logger) *session {
	ctx, cancel := context.WithCancel(r.base)
	s := &session{
		r: r, rec: c.Session, conn: c, client: client, up: up, log: log,
		ctx: ctx, cancel: cancel,
		kill:       make(chan endCause, 1),
		stopping:   make(chan struct{}),
		clientDone: make(chan error, 1),
		upDone:     make(chan error, 1),
	}
	s.gov = r.Governor.Open(c.Session, govern.Hooks{
		Beta: c.Beta,
		Upstream: func(ctx context.Context, frame []byte) error {
			return s.up.writeCtx(ctx, gws.TextMessage, frame, clientWriteTimeout)
		},
		Client: s.writeClient,
		End: func(ref *govern.Refusal) {
			c := gatewayEnd(ref.Code, ref.Message)
			s.ending.CompareAndSwap(nil, &c)
		},
	})
	return s
}

// endIfDue ends the session if the governor asked to while the calling
// pump handled its last frame.
func (s *session) endIfDue() {
	if c := s.ending.Load(); c != nil {
		s.terminate(*c)
	}
}

// drain closes the session with 1001 once nothing it started upstream is
// outstanding (at once when idle), or returns when ctx ends or the session
// ends otherwise.
func (s *session) drain(ctx context.Context) {
	s.gov.Quiesce() // nothing new starts; what runs finishes
	for {
		n, idle := s.gov.Outstanding()
		if n == 0 {
			// The last response.done may be on its way to the client: the
			// upstream pump ends the session once it has forwarded it.
			c := gatewayEnd("going_away", "the gateway is shutting down")
			s.ending.CompareAndSwap(nil, &c)
			if !s.busy[sideUpstream].Load() { // else the pump ends it after its frame
				s.terminate(c)
			}
			select { // until the pump has ended it, so Shutdown cannot cut first
			case <-s.stopping:
			case <-ctx.Done():
			}
			return
		}
		select {
		case <-idle:
		case <-s.stopping:
			return
		case <-ctx.Done():
			return
		}
	}
}

// terminate asks the supervisor to end the session; later requests are
// ignored.
func (s *session) terminate(c endCause) {
	select {
	case s.kill <- c:
	default:
	}
	s.stopOnce.Do(func() { close(s.stopping) })
}

// run is the supervisor: connect bookkeeping, pinning, the pumps, then the
// ending that the first event decides.
func (s *session) run(dialed time.Duration) {
	s.started = s.r.now()
	s.lastClient.Store(time.Now().UnixNano())
	// Reads take no context: the end of the session's context (a hard
	// shutdown) cuts both sockets instead.
	defer context.AfterFunc(s.ctx, func() { s.client.closeNow(); s.up.closeNow() })()
	s.connected(dialed)

	cause, pinned := s.pinOrFail()
	if !pinned {
		select {
		case cause = <-s.kill: // pinning was interrupted by CloseSessions or Shutdown
		default:
		}
	}
	var pumps sync.WaitGroup
	if pinned {
		pumps.Add(2)
		go func() { defer pumps.Done(); s.clientDone <- s.clientPump() }()
		go func() { defer pumps.Done(); s.upDone <- s.upstreamPump() }()
		s.pinging.Store(true)
		s.r.startPings()
		cause = s.wait()
		s.pinging.Store(false)
	}
	s.finish(cause, pinned)

	// Both sockets are closed or closing: bound the pumps' exit, then cut.
	exited := make(chan struct{})
	go func() { pumps.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(closeWait):
	}
	s.client.closeNow()
	s.up.closeNow()
	s.cancel()
	<-exited
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.r.base), 5*time.Second)
	s.gov.Close(ctx)
	cancel()
	s.disconnected(cause)
}

// wait blocks until something ends the session and returns why, enforcing
// the duration and idle limits meanwhile.
func (s *session) wait() endCause {
	var expire, warn, idle <-chan time.Time
	lim := s.rec.Limits
	if lim.MaxSessionSeconds > 0 {
		left := time.Duration(float64(lim.MaxSessionSeconds)*float64(time.Second)) -
			time.Duration(s.rec.LiveSeconds*float64(time.Second))
		lead := s.gov.WarnLead(lim.MaxSessionSeconds)
		t := time.NewTimer(max(left, 0))
		defer t.Stop()
		expire = t.C
		if left > 0 { // within the lead already: warn at once
			w := time.NewTimer(max(left-lead, 0))
			defer w.Stop()
			warn = w.C
		}
	}
	var idleTimer *time.Timer
	idleAfter := time.Duration(lim.IdleTimeoutSeconds) * time.Second
	if idleAfter > 0 {
		idleTimer = time.NewTimer(idleAfter)
		defer idleTimer.Stop()
		idle = idleTimer.C
	}
	for {
		select {
		case err := <-s.clientDone:
			if errors.Is(err, errUpstreamGone) {
				select {
				case err = <-s.upDone:
				case <-time.After(closeWait):
				}
				return upstreamCause(err)
			}
			return clientCause(err)
		case err := <-s.upDone:
			return upstreamCause(err)
		case c := <-s.kill:
			return c
		case <-warn:
			warn = nil
			s.writeClient(realtime.ErrorEvent(govern.CodeSessionExpiring, "the session reaches its maximum duration soon", ""))
		case <-expire:
			return gatewayEnd(govern.CodeSessionExpired, "the session reached its maximum duration")
		case <-idle:
			quiet := time.Since(time.Unix(0, s.lastClient.Load()))
			if quiet >= idleAfter {
				return gatewayEnd(govern.CodeIdleTimeout, "the session was idle for too long")
			}
			idleTimer.Reset(idleAfter - quiet)
		}
	}
}

func clientCause(err error) endCause {
	code, reason := closeStatus(err)
	return endCause{by: byClient, code: code, reason: reason}
}

func upstreamCause(err error) endCause {
	if code, reason := closeStatus(err); code != -1 {
		return endCause{by: byUpstream, code: code, reason: reason}
	}
	return endCause{by: byUpstream, code: -1, reason: "upstream_unavailable", message: "the upstream connection was lost"}
}

// sendable maps a received close code to one that may be sent on the wire
// (1005, 1006 and 1015 are reserved for reporting).
func sendable(code websocket.StatusCode) websocket.StatusCode {
	switch {
	case code == websocket.StatusNoStatusRcvd || code == -1 || code == websocket.StatusAbnormalClosure || code == websocket.StatusTLSHandshake:
		return websocket.StatusNormalClosure
	case code < 1000 || code > 4999 || (code > 1014 && code < 3000):
		return websocket.StatusNormalClosure
	}
	return code
}

// finish closes both sides as cause demands. Every path settles the
// responses still outstanding before the upstream side closes, except
// when upstream itself ended.
func (s *session) finish(c endCause, pinned bool) {
	switch c.by {
	case byClient:
		s.clientGone.Store(true)
		s.client.closeNow()
		if pinned && s.settle() {
			s.up.closeWith(websocket.StatusNormalClosure, "")
		} else {
			s.up.closeWith(sendable(c.code), c.reason)
		}
	case byUpstream:
		if c.code == -1 {
			s.r.Metrics.error("upstream_unavailable")
			s.writeClientWithin(realtime.ErrorEvent("upstream_unavailable", c.message, ""), closingWriteTimeout)
			s.client.closeWith(websocket.StatusInternalError, "upstream_unavailable")
		} else {
			s.client.closeWith(sendable(c.code), c.reason)
		}
		s.up.closeNow()
	case byGateway:
		s.r.Metrics.error(c.reason)
		s.writeClientWithin(realtime.ErrorEvent(c.reason, c.message, ""), closingWriteTimeout)
		s.clientGone.Store(true)
		s.client.closeWith(c.code, c.reason)
		if pinned {
			s.settle()
		}
		s.up.closeWith(websocket.StatusNormalClosure, "")
	}
}

// settle keeps the upstream side open, bounded by AbandonWait, until every
// response sent upstream is done (the governor cancels the running ones),
// so what upstream bills is metered. It reports whether anything was
// outstanding.
func (s *session) settle() bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.r.abandonWait())
	defer cancel()
	if !s.gov.Abandon(ctx) {
		return false
	}
	for {
		n, idle := s.gov.Outstanding()
		if n == 0 {
			return true
		}
		select {
		case <-idle:
		case <-ctx.Done():
			s.log.Warn("abandoned responses not settled in time", "outstanding", n)
			s.r.Metrics.error("abandon_timeout")
			return true
		}
	}
}

// writeClient sends a frame to the client unless it is gone; a failed or
// slow write marks it gone.
func (s *session) writeClient(frame []byte) { s.writeClientWithin(frame, clientWriteTimeout) }

// writeClientWithin is writeClient with a bound on the write (a closing
// session must not wait long on a stalled client).
func (s *session) writeClientWithin(frame []byte, d time.Duration) {
	if s.clientGone.Load() {
		return
	}
	if err := s.client.write(gws.TextMessage, frame, d); err != nil {
		s.clientGone.Store(true)
	}
}

// connected records the session as live.
func (s *session) connected(dialed time.Duration) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	s.gov.Connected(ctx, "websocket", map[string]any{"beta": s.conn.Beta, "upstream_dial_ms": dialed.Milliseconds()})
	s.r.Metrics.liveAdd(1)
	s.log.Info("session connected", "model", s.rec.Model, "beta", s.conn.Beta, "upstream_dial_ms", dialed.Milliseconds())
}

// disconnected records the end: state, live seconds, audit, log, metrics.
func (s *session) disconnected(c endCause) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dur := s.r.now().Sub(s.started).Seconds()
	s.gov.Disconnected(ctx, govern.Ending{By: c.by, Code: c.reason, CloseCode: int(c.code), Seconds: dur})
	t := s.gov.Totals()
	s.r.Metrics.liveAdd(-1)
	s.log.Info("session disconnected", "by", c.by, "close_code", int(c.code), "reason", c.reason,
		"duration_seconds", dur, "responses", t.Responses, "total_tokens", t.Usage.TotalTokens, "cost_nanousd", t.CostNanoUSD)
}
