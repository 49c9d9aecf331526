package memory

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Allow applies the generic cell rate algorithm: each event moves the key's
// theoretical arrival time (TAT) one emission interval (Period/Rate) ahead,
// and an event is refused when that would put the TAT more than Burst
// intervals ahead of now.
func (s *Store) Allow(ctx context.Context, key string, l store.Limit) (store.LimitResult, error) {
	if l.Rate <= 0 || l.Period <= 0 {
		return store.LimitResult{}, fmt.Errorf("memory: allow %q: invalid limit %d per %v", key, l.Rate, l.Period)
	}
	interval := l.Period / time.Duration(l.Rate)
	burst := time.Duration(max(l.Burst, 1))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	tat := s.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	allowAt := next.Add(-interval * burst)
	if now.Before(allowAt) {
		return store.LimitResult{RetryAfter: allowAt.Sub(now), ResetAfter: tat.Sub(now)}, nil
	}
	s.tat[key] = next
	s.maybeGC(now)
	return store.LimitResult{
		Allowed:    true,
		Remaining:  int(now.Sub(allowAt) / interval),
		ResetAfter: next.Sub(now),
	}, nil
}

// AcquireLease adds or renews holder under key if fewer than max unexpired
// holders exist (a renewal always succeeds).
func (s *Store) AcquireLease(ctx context.Context, key, holder string, max int, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	hs := s.liveHolders(key, now)
	if _, held := hs[holder]; !held && len(hs) >= max {
		return false, nil
	}
	if hs == nil {
		hs = make(map[string]time.Time)
		s.leases[key] = hs
	}
	hs[holder] = now.Add(ttl)
	s.maybeGC(now)
	return true, nil
}

// gcEvery paces maybeGC: once per this many granted Allow and AcquireLease
// calls.
const gcEvery = 1024

// maybeGC drops, every gcEvery calls, rate-limit entries whose TAT has
// passed (they mean the same as no entry) and expired leases, so keys that
// are never used again do not accumulate. The caller holds s.mu.
func (s *Store) maybeGC(now time.Time) {
	s.ops++
	if s.ops%gcEvery != 0 {
		return
	}
	for k, tat := range s.tat {
		if tat.Before(now) {
			delete(s.tat, k)
		}
	}
	for k := range s.leases {
		s.liveHolders(k, now)
	}
}

// RenewLease extends holder's slot to ttl from now; store.ErrNotFound when
// the slot was released or has expired.
func (s *Store) RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	hs := s.liveHolders(key, now)
	if _, held := hs[holder]; !held {
		return fmt.Errorf("memory: renew lease %q: %w", key, store.ErrNotFound)
	}
	hs[holder] = now.Add(ttl)
	return nil
}

// ReleaseLease frees holder's slot; releasing an unknown holder is a no-op.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hs := s.leases[key]; hs != nil {
		delete(hs, holder)
		if len(hs) == 0 {
			delete(s.leases, key)
		}
	}
	return nil
}

// LeaseCount reports the unexpired holders under key.
func (s *Store) LeaseCount(ctx context.Context, key string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.liveHolders(key, s.now())), nil
}

// liveHolders drops expired holders of key and returns the rest (nil when
// none). The caller holds s.mu.
func (s *Store) liveHolders(key string, now time.Time) map[string]time.Time {
	hs := s.leases[key]
	for h, exp := range hs {
		if !exp.After(now) {
			delete(hs, h)
		}
	}
	if len(hs) == 0 {
		delete(s.leases, key)
		return nil
	}
	return hs
}

// account is one budget's running totals.
type account struct{ spent, reserved int64 }

// hold is a live reservation: the amount held on each of its accounts.
// Holds never expire here: nothing in memory outlives the process that
// would settle them.
type hold struct {
	amount  int64
	keys    []string
	session string
	seq     uint64 // order of the grant, for SessionHolds
}

// Reserve grants the largest amount in [Min, Want] that fits every limited
// account. Reserving an id that is already held answers the first grant.
// Remaining is math.MaxInt64 when no account has a limit.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (store.ReserveResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	avail, limited := int64(math.MaxInt64), false
	for _, a := range r.Accounts {
		if a.LimitNano <= 0 {
			continue
		}
		limited = true
		acc := s.account(a.Key)
		avail = min(avail, a.LimitNano-acc.spent-acc.reserved)
	}
	remaining := func(v int64) int64 {
		if !limited {
			return math.MaxInt64
		}
		return max(v, 0)
	}
	if h, ok := s.holds[r.ID]; ok {
		return store.ReserveResult{Granted: h.amount, Remaining: remaining(avail)}, nil
	}
	g := min(r.Want, avail)
	if g <= 0 || g < r.Min {
		return store.ReserveResult{Remaining: remaining(avail)}, nil
	}
	s.holdSeq++
	h := hold{amount: g, session: r.Session, seq: s.holdSeq}
	for _, a := range r.Accounts {
		if slices.Contains(h.keys, a.Key) {
			continue // an account listed twice is held once
		}
		s.account(a.Key).reserved += g
		h.keys = append(h.keys, a.Key)
	}
	s.holds[r.ID] = h
	return store.ReserveResult{Granted: g, Remaining: remaining(avail - g)}, nil
}

// Settle releases reservation id and charges actual to each of its accounts;
// an unknown or settled id is a no-op.
func (s *Store) Settle(ctx context.Context, id string, actual int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.holds[id]
	if !ok {
		return nil
	}
	delete(s.holds, id)
	for _, k := range h.keys {
		acc := s.account(k)
		acc.reserved -= h.amount
		acc.spent += actual
	}
	return nil
}

// Charge adds amount to every account's spend.
func (s *Store) Charge(ctx context.Context, accounts []store.BudgetAccount, amount int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if !seen[a.Key] {
			seen[a.Key] = true
			s.account(a.Key).spent += amount
		}
	}
	return nil
}

// Spent reports the account's spend and live holds (zeros when unknown).
func (s *Store) Spent(ctx context.Context, key string) (spent, reserved int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acc, ok := s.accounts[key]; ok {
		return acc.spent, acc.reserved, nil
	}
	return 0, 0, nil
}

// SessionHolds lists the session's unsettled reservations in the order they
// were granted; none for session "".
func (s *Store) SessionHolds(ctx context.Context, session string) ([]store.Hold, error) {
	if session == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Hold
	for id, h := range s.holds {
		if h.session == session {
			out = append(out, store.Hold{ID: id, Amount: h.amount, Accounts: slices.Sorted(slices.Values(h.keys))})
		}
	}
	slices.SortFunc(out, func(a, b store.Hold) int { return cmp.Compare(s.holds[a.ID].seq, s.holds[b.ID].seq) })
	return out, nil
}

// account returns the totals of key, creating them. The caller holds s.mu.
func (s *Store) account(key string) *account {
	acc, ok := s.accounts[key]
	if !ok {
		acc = &account{}
		s.accounts[key] = acc
	}
	return acc
}
