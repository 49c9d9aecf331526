package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Allow applies the generic cell rate algorithm in one BEGIN IMMEDIATE
// transaction: each event moves the key's theoretical arrival time (TAT)
// one emission interval (Period/Rate) ahead, and an event is refused when
// that would put the TAT more than Burst intervals ahead of now.
func (s *Store) Allow(ctx context.Context, key string, l store.Limit) (store.LimitResult, error) {
	if l.Rate <= 0 || l.Period <= 0 {
		return store.LimitResult{}, fmt.Errorf("sqlite: allow %q: invalid limit %d per %v", key, l.Rate, l.Period)
	}
	interval := int64(l.Period / time.Duration(l.Rate))
	burst := int64(max(l.Burst, 1))
	var res store.LimitResult
	err := s.tx(ctx, "allow", func(ctx context.Context, tx *sql.Tx) error {
		now := s.now().UnixNano()
		var tat int64
		err := s.queryRow(ctx, tx, selectTATQuery, key).Scan(&tat)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return unavailable("allow", err)
		}
		tat = max(tat, now)
		next := tat + interval
		allowAt := next - interval*burst
		if now < allowAt {
			res = store.LimitResult{RetryAfter: time.Duration(allowAt - now), ResetAfter: time.Duration(tat - now)}
			return nil
		}
		if _, err := s.exec(ctx, tx, upsertTATQuery, key, next); err != nil {
			return unavailable("allow", err)
		}
		res = store.LimitResult{Allowed: true, Remaining: int((now - allowAt) / interval), ResetAfter: time.Duration(next - now)}
		return nil
	})
	s.maybeGC(ctx)
	return res, err
}

// gcEvery paces the deletion of stale rate-limit and lease rows: once per
// this many Allow and AcquireLease calls of a Store.
const gcEvery = 1024

// maybeGC deletes, every gcEvery calls, the rate-limit rows whose TAT has
// passed (they mean the same as no row) and the expired leases of keys
// nobody acquires any more. Failures are left for the next round.
func (s *Store) maybeGC(ctx context.Context) {
	if s.ops.Add(1)%gcEvery != 0 {
		return
	}
	now := s.now().UnixNano()
	_ = s.tx(ctx, "gc", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM rate_limits WHERE tat < ?`, now); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM leases WHERE expires_at <= ?`, now)
		return err
	})
}

// AcquireLease adds or renews holder under key if fewer than max unexpired
// holders exist (a renewal always succeeds). Expired holders are deleted in
// the same transaction.
func (s *Store) AcquireLease(ctx context.Context, key, holder string, max int, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.tx(ctx, "acquire lease", func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		if _, err := s.exec(ctx, tx, pruneLeasesQuery, key, now.UnixNano()); err != nil {
			return unavailable("acquire lease", err)
		}
		var count, held int
		if err := s.queryRow(ctx, tx, countLeasesQuery, holder, key).Scan(&count, &held); err != nil {
			return unavailable("acquire lease", err)
		}
		if held == 0 && count >= max {
			return nil
		}
		if _, err := s.exec(ctx, tx, upsertLeaseQuery, key, holder, now.Add(ttl).UnixNano()); err != nil {
			return unavailable("acquire lease", err)
		}
		ok = true
		return nil
	})
	s.maybeGC(ctx)
	return ok, err
}

// RenewLease extends holder's slot to ttl from now; store.ErrNotFound when
// the slot was released or has expired.
func (s *Store) RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error {
	now := s.now()
	return s.tx(ctx, "renew lease", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE leases SET expires_at = ? WHERE key = ? AND holder = ? AND expires_at > ?`,
			now.Add(ttl).UnixNano(), key, holder, now.UnixNano())
		if err != nil {
			return unavailable("renew lease", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return unavailable("renew lease", err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite: renew lease %q: %w", key, store.ErrNotFound)
		}
		return nil
	})
}

// ReleaseLease frees holder's slot; releasing an unknown holder is a no-op.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	return s.tx(ctx, "release lease", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM leases WHERE key = ? AND holder = ?`, key, holder); err != nil {
			return unavailable("release lease", err)
		}
		return nil
	})
}

// LeaseCount reports the unexpired holders under key.
func (s *Store) LeaseCount(ctx context.Context, key string) (int, error) {
	var n int
	err := s.dbQueryRow(ctx, `SELECT COUNT(*) FROM leases WHERE key = ? AND expires_at > ?`,
		key, s.now().UnixNano()).Scan(&n)
	if err != nil {
		return 0, unavailable("lease count", err)
	}
	return n, nil
}
