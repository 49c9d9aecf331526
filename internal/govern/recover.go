package govern

import (
	"context"
	"errors"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// An instance that dies (SIGKILL, a crash, a lost machine) cannot record
// the end of its sessions: they stay "live" in the store, and their budget
// reservations stay held until they expire, blocking the budgets of their
// users. Every instance therefore runs a recovery pass each lease TTL: a
// session recorded live whose one-live-connection lease ("tok:<id>") has
// been missing on two passes a lease TTL apart (suspectAge) has no connection
// anywhere (a live connection renews that lease every third of the TTL).
// Recovery releases its open reservations and records it idle (it may
// reconnect until its token expires), with an audit record "recovered".
//
// What a dead instance had read from upstream but not yet recorded is
// lost with it: the ledger is written before each response.done is
// forwarded, so at most the responses whose response.done was in flight
// between upstream and the dead instance are missing, and their
// reservations are released, not charged.

// recoverBatch bounds one pass over the live sessions.
const recoverBatch = 10000

// suspectAge is how long a session must have been a suspect to be
// recovered: a lease TTL, less a tenth. Passes run a ticker's TTL apart but
// each reads the clock a little after its tick (after listing the live
// sessions); without the slack, a later pass reading it sooner than the
// earlier one sees its suspects as younger than a TTL and recovery slips a
// whole pass (from two TTLs after the lease lapsed to three).
func suspectAge(ttl time.Duration) time.Duration { return ttl - ttl/10 }

// RunRecovery runs a recovery pass every lease TTL until ctx is done.
func (g *Governor) RunRecovery(ctx context.Context) {
	g.init()
	t := time.NewTicker(g.leaseTTL())
	defer t.Stop()
	suspects := map[string]time.Time{}
	for {
		if _, err := g.recoverPass(ctx, suspects); err != nil && ctx.Err() == nil {
			g.logger().Warn("recovery pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverPass recovers the sessions that were suspects for at least a lease
// TTL and records the new suspects; it returns how many it recovered.
func (g *Governor) recoverPass(ctx context.Context, suspects map[string]time.Time) (int, error) {
	g.init()
	live, err := g.Store.ListSessions(ctx, store.SessionFilter{State: store.StateLive, Limit: recoverBatch})
	if err != nil {
		return 0, err
	}
	now := g.now()
	seen := map[string]bool{}
	n := 0
	for _, rec := range live {
		g.liveM.Lock()
		_, mine := g.live[rec.ID]
		g.liveM.Unlock()
		if mine {
			continue
		}
		holders, err := g.Store.LeaseCount(ctx, "tok:"+rec.ID)
		if err != nil {
			return n, err
		}
		if holders > 0 {
			continue
		}
		seen[rec.ID] = true
		first, ok := suspects[rec.ID]
		if !ok {
			suspects[rec.ID] = now
			continue
		}
		if now.Sub(first) < suspectAge(g.leaseTTL()) {
			continue
		}
		if err := g.recoverSession(ctx, rec); err != nil {
			return n, err
		}
		delete(suspects, rec.ID)
		n++
	}
	for id := range suspects {
		if !seen[id] {
			delete(suspects, id)
		}
	}
	return n, nil
}

// recoverSession releases the open reservations of a session whose
// connection died with its instance and records it idle.
func (g *Governor) recoverSession(ctx context.Context, rec *store.Session) error {
	holds, err := g.Store.SessionHolds(ctx, rec.ID)
	if err != nil {
		return err
	}
	var released int64
	for _, h := range holds {
		if err := g.Store.Settle(ctx, h.ID, 0); err != nil {
			return err
		}
		released += h.Amount
	}
	now := g.now()
	_, err = g.Store.UpdateSession(ctx, rec.ID, func(s *store.Session) error {
		if s.State != store.StateLive {
			return errStillOwned
		}
		s.State = store.StateIdle
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			s.State, s.EndedAt, s.EndReason = store.StateEnded, now, "instance_lost"
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStillOwned) {
		return err
	}
	g.logger().Warn("recovered a session whose instance died", "session_id", rec.ID, "released_nanousd", released, "holds", len(holds))
	g.audit(ctx, rec, "recovered", map[string]any{"released_nanousd": released, "holds": len(holds)})
	return nil
}

var errStillOwned = errors.New("govern: session no longer live")
