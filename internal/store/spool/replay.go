package spool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// run is the replayer goroutine: it ticks every interval and flushes the
// spool when it is non-empty and the backend answers Ping. It exits when
// ctx is done (Close).
func (s *Spool) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.Pending() == 0 {
			continue
		}
		if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("spool: replay postponed", "err", err)
		}
	}
}

// Flush replays the spooled operations now, in order, and returns nil once
// the spool is empty. It stops at the first store.ErrUnavailable (the ops
// from there on stay spooled) and returns that error. An operation the
// backend rejects for another reason can never succeed; it is logged and
// dropped so it does not block the ops behind it.
func (s *Spool) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == s.applied {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	err := s.Store.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("spool: replay: %w", err)
	}
	start := s.applied
	for s.applied < len(s.pending) {
		o := &s.pending[s.applied]
		octx, cancel := context.WithTimeout(ctx, s.opTimeout)
		err := o.apply(octx, s.Store)
		cancel()
		if err != nil {
			if errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
				return fmt.Errorf("spool: replay stopped after %d ops: %w", s.applied-start, err)
			}
			s.log.Error("spool: dropping operation the backend rejects", "op", o.Kind, "err", err)
		}
		s.applied++
		if err := s.f.setApplied(s.applied); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	if err := s.f.reset(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.log.Info("spool: replayed spooled operations", "count", s.applied-start)
	s.pending, s.applied = nil, 0
	clear(s.ledger)
	return nil
}
