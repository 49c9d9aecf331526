package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// AcquireLease adds holder to the slots of key when fewer than max
// unexpired holders exist; an existing holder is renewed. Expiry uses the
// Redis server's clock, so a killed instance's slots free within ttl
// whichever instance looks next.
func (s *Store) AcquireLease(ctx context.Context, key, holder string, max int, ttl time.Duration) (bool, error) {
	n, err := leaseAcquireScript.Run(ctx, s.c, []string{s.k.lease(key)}, s.clockArgs(holder, max, leaseMS(ttl))...).Int()
	if err != nil {
		return false, unavailable("acquire lease", err)
	}
	return n == 1, nil
}

// RenewLease extends holder's slot by ttl from now. It returns
// store.ErrNotFound when the slot was released or has expired: the holder
// must acquire again (and may find the key full).
func (s *Store) RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error {
	n, err := leaseRenewScript.Run(ctx, s.c, []string{s.k.lease(key)}, s.clockArgs(holder, leaseMS(ttl))...).Int()
	if err != nil {
		return unavailable("renew lease", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: renew lease %q: %w", key, store.ErrNotFound)
	}
	return nil
}

// ReleaseLease frees holder's slot; releasing a slot not held is a no-op.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	if err := s.c.ZRem(ctx, s.k.lease(key), holder).Err(); err != nil {
		return unavailable("release lease", err)
	}
	return nil
}

// LeaseCount reports the unexpired holders of key.
func (s *Store) LeaseCount(ctx context.Context, key string) (int, error) {
	n, err := leaseCountScript.Run(ctx, s.c, []string{s.k.lease(key)}, s.clockArgs()...).Int()
	if err != nil {
		return 0, unavailable("count leases", err)
	}
	return n, nil
}

// leaseMS converts a ttl to whole milliseconds, at least one.
func leaseMS(ttl time.Duration) int64 {
	ms := ttl.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}
