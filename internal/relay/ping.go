package relay

import (
	"context"
	"time"
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

// pinger pings both sides every PingInterval until ctx is done. A frozen
// client or a dead path (a phone that vanished behind a proxy, which sends
// no close and no RST) is found out by its missing pong: its socket is cut,
// so its pump ends the session as the client's (or upstream's) and the
// session's slots are released. Pongs are read by the pumps' reads.
func (s *session) pinger(ctx context.Context) {
	every := s.r.pingInterval()
	if every < 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.clientGone.Load() && !s.ping(ctx, sideClient) {
			return
		}
		if !s.ping(ctx, sideUpstream) {
			return
		}
	}
}

// ping pings one side and cuts it when no pong comes in time; it reports
// whether the side answered (or ctx ended meanwhile). A pong is read by the
// side's pump: when the pump was busy with a frame (a slow store, a slow
// other side) or read one meanwhile, the side is alive though its pong
// came late.
func (s *session) ping(ctx context.Context, side int) bool {
	conn, name := s.client, "client"
	if side == sideUpstream {
		conn, name = s.up, "upstream"
	}
	start := time.Now().UnixNano()
	err := conn.ping(ctx, s.r.pingTimeout())
	if err == nil {
		if s.r.onPong != nil {
			s.r.onPong(name)
		}
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	if s.busy[side].Load() || s.readAt[side].Load() > start {
		s.log.Debug("late pong from a side that is sending", "side", name)
		return true
	}
	s.log.Info("no pong: closing the side", "side", name, "err", err)
	s.r.Metrics.error("ping_timeout_" + name)
	conn.closeNow()
	return false
}
