package relay

import (
	"context"
	"time"
)

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
		if !s.clientGone.Load() && !s.ping(ctx, "client") {
			return
		}
		if !s.ping(ctx, "upstream") {
			return
		}
	}
}

// ping pings one side and cuts it when no pong comes in time; it reports
// whether the side answered (or ctx ended meanwhile).
func (s *session) ping(ctx context.Context, side string) bool {
	conn := s.client
	if side == "upstream" {
		conn = s.up
	}
	pctx, cancel := context.WithTimeout(ctx, s.r.pingTimeout())
	err := conn.Ping(pctx)
	cancel()
	if err == nil {
		if s.r.onPong != nil {
			s.r.onPong(side)
		}
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	s.log.Info("no pong: closing the side", "side", side, "err", err)
	s.r.Metrics.error("ping_timeout_" + side)
	_ = conn.CloseNow()
	return false
}
