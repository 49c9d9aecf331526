package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

// TestReservationHoldsLapse: a hold that is never settled (its process
// died) stops counting after the reservation ttl; settling it late still
// charges what was spent.
func TestReservationHoldsLapse(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now())
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithNow(clock.Now), sqlite.WithReservationTTL(time.Minute))
	defer s.Close()
	acct := []store.BudgetAccount{{Key: "session:vgs_1", LimitNano: 100}}
	if r, err := s.Reserve(ctx, store.Reservation{ID: "dead", Session: "vgs_1", Accounts: acct, Want: 80, Min: 80}); err != nil || r.Granted != 80 {
		t.Fatalf("Reserve = %+v, %v", r, err)
	}
	if r, err := s.Reserve(ctx, store.Reservation{ID: "r2", Accounts: acct, Want: 50, Min: 50}); err != nil || r.Granted != 0 {
		t.Fatalf("Reserve beyond the limit = %+v, %v", r, err)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if hs, err := s.SessionHolds(ctx, "vgs_1"); err != nil || len(hs) != 1 {
		t.Errorf("SessionHolds just before the ttl = %+v, %v; want the hold", hs, err)
	}
	clock.Advance(time.Nanosecond)
	if _, reserved, err := s.Spent(ctx, "session:vgs_1"); err != nil || reserved != 0 {
		t.Errorf("reserved after the ttl = %d, %v; want 0", reserved, err)
	}
	if hs, err := s.SessionHolds(ctx, "vgs_1"); err != nil || len(hs) != 0 {
		t.Errorf("SessionHolds after the ttl = %+v, %v; want none (the hold lapsed)", hs, err)
	}
	if r, err := s.Reserve(ctx, store.Reservation{ID: "r2", Accounts: acct, Want: 50, Min: 50}); err != nil || r.Granted != 50 {
		t.Fatalf("Reserve after the lapse = %+v, %v", r, err)
	}
	if err := s.Settle(ctx, "dead", 30); err != nil {
		t.Fatal(err)
	}
	if spent, reserved, err := s.Spent(ctx, "session:vgs_1"); err != nil || spent != 30 || reserved != 50 {
		t.Errorf("Spent after the late settle = %d, %d, %v; want 30, 50", spent, reserved, err)
	}
	// A retried Reserve of a live reservation answers the first grant.
	if r, err := s.Reserve(ctx, store.Reservation{ID: "r2", Accounts: acct, Want: 50, Min: 50}); err != nil || r.Granted != 50 {
		t.Errorf("retried Reserve = %+v, %v", r, err)
	}
	if _, reserved, _ := s.Spent(ctx, "session:vgs_1"); reserved != 50 {
		t.Errorf("reserved after the retry = %d, want 50 (held once)", reserved)
	}
}

// TestStaleRowsCollected: rate-limit and lease rows that mean nothing any
// more are deleted now and then, so one-off keys do not pile up.
func TestStaleRowsCollected(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now())
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithNow(clock.Now))
	defer s.Close()
	count := func(table string) int {
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const calls = 1024 // sqlite.gcEvery
	for i := range calls/2 - 1 {
		if _, err := s.Allow(ctx, fmt.Sprintf("ip:%d", i), store.PerMinute(10)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquireLease(ctx, fmt.Sprintf("conc:%d", i), "h", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n := count("rate_limits"); n != calls/2-1 {
		t.Fatalf("rate_limits has %d rows, want %d", n, calls/2-1)
	}
	clock.Advance(time.Hour)
	if _, err := s.Allow(ctx, "ip:last", store.PerMinute(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "conc:last", "h", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := count("rate_limits"); n != 1 {
		t.Errorf("rate_limits has %d rows after gc, want 1 (the live key)", n)
	}
	if n := count("leases"); n != 1 {
		t.Errorf("leases has %d rows after gc, want 1 (the live holder)", n)
	}
}
