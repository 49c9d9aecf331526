package server

import (
	"context"
	"time"
)

// WatchRevocations subscribes to the revocation bus and closes this
// instance's live sessions covered by each revocation, until ctx is done.
// A broken subscription is re-established with backoff. The caller owns the
// goroutine that runs it.
func (s *Server) WatchRevocations(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := s.Store.SubscribeRevocations(ctx)
		if err != nil {
			s.Logger.Error("revocation subscribe failed", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for rev := range ch {
			if n := s.closeRevoked(rev); n > 0 {
				s.Logger.Info("revocation closed live sessions", "kind", rev.Kind, "closed", n)
			}
		}
	}
}
