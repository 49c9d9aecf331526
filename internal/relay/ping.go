package relay

import (
	"sync"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voicegate/voicegate/internal/store"
)

// The sides of a session, for the pumps' liveness marks.
const (
	sideClient = iota
	sideUpstream
)

// read marks that side's pump as handling a frame it just read.
func (s *session) read(side int) {
	s.readAt[side].Store(time.Now().UnixNano())
	s.busy[side].Store(true)
}

func (r *Relay) pingInterval() time.Duration {
	if r.PingInterval != 0 {
		return r.PingInterval
	}
	return DefaultPingInterval
}

func (r *Relay) pingTimeout() time.Duration {
	if r.PingTimeout > 0 {
		return r.PingTimeout
	}
	return DefaultPingTimeout
}

// pinger pings both sides of every live session every PingInterval. A
// frozen client or a dead path (a phone that vanished behind a proxy, which
// sends no close and no RST) is found out by its missing pong: its socket
// is cut, so its pump ends the session as the client's (or upstream's) and
// the session's slots are released. Pongs are read by the pumps' reads.
//
// One goroutine serves every session of the relay, stepping them all each
// tick (a tenth of the shorter of interval and timeout), instead of a
// goroutine and a ticker per session: an idle session costs no stack of
// its own for its pings. It runs while sessions are live.
type pinger struct {
	mu      sync.Mutex
	running bool
}

// pingSide is the ping state of one side of a session, owned by the
// relay's ping loop.
type pingSide struct {
	sentAt int64 // unix nanos of the outstanding ping; 0: none
	lastAt int64 // unix nanos of the last ping sent
}

// startPings makes sure the ping loop runs (a session was just added).
func (r *Relay) startPings() {
	if r.pingInterval() < 0 {
		return
	}
	r.pings.mu.Lock()
	defer r.pings.mu.Unlock()
	if !r.pings.running {
		r.pings.running = true
		go r.pingLoop() // owner: the relay; ends when no session is live
	}
}

func (r *Relay) pingLoop() {
	tick := max(min(r.pingInterval(), r.pingTimeout())/10, time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-r.base.Done():
			r.pings.mu.Lock()
			r.pings.running = false
			r.pings.mu.Unlock()
			return
		case now := <-t.C:
			r.pings.mu.Lock()
			if r.live.Len() == 0 { // under the lock: a session added now starts a new loop
				r.pings.running = false
				r.pings.mu.Unlock()
				return
			}
			r.pings.mu.Unlock()
			for _, s := range r.live.Select(func(s *session, _ *store.Session) bool { return s.pinging.Load() }) {
				s.pingStep(now.UnixNano())
			}
		}
	}
}

// pingStep advances both sides' pings: a side whose ping went unanswered
// for PingTimeout is cut, unless its pump was busy with a frame or read one
// meanwhile (alive, though its pong came late); a side due for a ping gets
// one.
func (s *session) pingStep(now int64) {
	interval, timeout := s.r.pingInterval().Nanoseconds(), s.r.pingTimeout().Nanoseconds()
	for side := range 2 {
		conn, name := s.client, "client"
		if side == sideUpstream {
			conn, name = s.up, "upstream"
		} else if s.clientGone.Load() {
			continue
		}
		st := &s.pingState[side]
		if st.sentAt != 0 {
			select {
			case <-conn.pong:
				st.sentAt = 0
				if s.r.onPong != nil {
					s.r.onPong(name)
				}
			default:
			}
		}
		if st.sentAt != 0 && now-st.sentAt >= timeout {
			if s.busy[side].Load() || s.readAt[side].Load() > st.sentAt {
				s.log.Debug("late pong from a side that is sending", "side", name)
				st.sentAt = 0
			} else {
				s.log.Info("no pong: closing the side", "side", name)
				s.r.Metrics.error("ping_timeout_" + name)
				s.pinging.Store(false)
				conn.closeNow()
				return
			}
		}
		if st.sentAt == 0 && now-st.lastAt >= interval {
			select { // a stale pong does not answer this ping
			case <-conn.pong:
			default:
			}
			st.sentAt, st.lastAt = now, now
			// Its own goroutine: a side whose writer is stuck holds the
			// write lock, and must not hold up every other session's pings.
			deadline := time.Unix(0, now+timeout)
			go func() { _ = conn.c.WriteControl(gws.PingMessage, nil, deadline) }()
		}
	}
}
