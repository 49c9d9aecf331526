package redis

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestReserveSettleCharge(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	end := time.Now().Add(24 * time.Hour)
	sess := store.BudgetAccount{Key: "session:vgs_1", LimitNano: 1000, ExpiresAt: end}
	user := store.BudgetAccount{Key: "user:day:alice", LimitNano: 600, ExpiresAt: end}

	res, err := s.Reserve(ctx, store.Reservation{ID: "r1", Accounts: []store.BudgetAccount{sess, user}, Want: 500, Min: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res != (store.ReserveResult{Granted: 500, Remaining: 100}) {
		t.Fatalf("r1 = %+v, want granted 500 remaining 100 (user account is tightest)", res)
	}
	// Only 100 left on the user account: granted is clamped to it.
	res, err = s.Reserve(ctx, store.Reservation{ID: "r2", Accounts: []store.BudgetAccount{sess, user}, Want: 500, Min: 50})
	if err != nil || res != (store.ReserveResult{Granted: 100, Remaining: 0}) {
		t.Fatalf("r2 = %+v, %v; want granted 100 remaining 0", res, err)
	}
	// Nothing left: refused, nothing held.
	res, err = s.Reserve(ctx, store.Reservation{ID: "r3", Accounts: []store.BudgetAccount{sess, user}, Want: 10, Min: 1})
	if err != nil || res.Granted != 0 {
		t.Fatalf("r3 = %+v, %v; want refused", res, err)
	}
	// A retried reservation answers its first grant without holding twice.
	res, err = s.Reserve(ctx, store.Reservation{ID: "r1", Accounts: []store.BudgetAccount{sess, user}, Want: 500, Min: 100})
	if err != nil || res.Granted != 500 {
		t.Fatalf("retried r1 = %+v, %v; want granted 500", res, err)
	}
	checkSpent(t, s, user.Key, 0, 600)
	checkSpent(t, s, sess.Key, 0, 600)

	if err := s.Settle(ctx, "r1", 320); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "r1", 320); err != nil { // second settle: no-op
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "unknown", 999); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, s, user.Key, 320, 100)
	checkSpent(t, s, sess.Key, 320, 100)

	if err := s.Charge(ctx, []store.BudgetAccount{user}, 80); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, s, user.Key, 400, 100)
	checkSpent(t, s, sess.Key, 320, 100)

	// Unlimited accounts grant Want and report no bound.
	res, err = s.Reserve(ctx, store.Reservation{ID: "r4", Accounts: []store.BudgetAccount{{Key: "free"}}, Want: 77, Min: 1})
	if err != nil || res != (store.ReserveResult{Granted: 77, Remaining: math.MaxInt64}) {
		t.Fatalf("unlimited = %+v, %v", res, err)
	}
	// Account keys carry a TTL tied to their window.
	ttl, err := s.c.PTTL(ctx, s.k.budgetAccount(user.Key)).Result()
	if err != nil || ttl < 47*time.Hour || ttl > 49*time.Hour {
		t.Fatalf("account ttl = %s, %v; want about window end + 24h", ttl, err)
	}
}

func checkSpent(t *testing.T, s *Store, key string, wantSpent, wantReserved int64) {
	t.Helper()
	spent, reserved, err := s.Spent(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if spent != wantSpent || reserved != wantReserved {
		t.Fatalf("%s: spent %d reserved %d, want %d and %d", key, spent, reserved, wantSpent, wantReserved)
	}
}

// TestReserveConcurrentNeverOverGrants: 64 reservations from two handles
// race for one shared account; together they hold exactly the limit.
func TestReserveConcurrentNeverOverGrants(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	handles := []*Store{open(t, url, prefix), open(t, url, prefix)}
	ctx := context.Background()
	const limit = 10_000
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			r := store.Reservation{
				ID: fmt.Sprintf("r%d", i),
				Accounts: []store.BudgetAccount{
					{Key: fmt.Sprintf("session:%d", i), LimitNano: 1000},
					{Key: "user:day:bob", LimitNano: limit},
				},
				Want: 700, Min: 150,
			}
			res, err := handles[i%2].Reserve(ctx, r)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Granted != 0 && (res.Granted < 150 || res.Granted > 700) {
				t.Errorf("granted %d outside [Min, Want]", res.Granted)
			}
			granted.Add(res.Granted)
		})
	}
	wg.Wait()
	if got := granted.Load(); got > limit || got < limit-150 {
		t.Fatalf("granted in total %d, want within (%d, %d]", got, limit-150, limit)
	}
	_, reserved, err := handles[0].Spent(ctx, "user:day:bob")
	if err != nil || reserved != granted.Load() {
		t.Fatalf("reserved %d, %v; want %d", reserved, err, granted.Load())
	}
}

// TestReservationHoldsExpire plays an instance that dies between reserve and
// settle: its hold is released after the reservation TTL; a late settle
// within the record's life still charges the actual cost.
func TestReservationHoldsExpire(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix(), WithReservationTTL(200*time.Millisecond))
	ctx := context.Background()
	acct := store.BudgetAccount{Key: "user:day:carol", LimitNano: 1000}
	if res, err := s.Reserve(ctx, store.Reservation{ID: "dead", Session: "vgs_dead", Accounts: []store.BudgetAccount{acct}, Want: 1000, Min: 1}); err != nil || res.Granted != 1000 {
		t.Fatalf("reserve: %+v, %v", res, err)
	}
	if res, err := s.Reserve(ctx, store.Reservation{ID: "blocked", Accounts: []store.BudgetAccount{acct}, Want: 1, Min: 1}); err != nil || res.Granted != 0 {
		t.Fatalf("reserve while held: %+v, %v; want refused", res, err)
	}
	// Listed until the hold expires; then also dropped from the session's list.
	if hs, err := s.SessionHolds(ctx, "vgs_dead"); err != nil || len(hs) != 1 || hs[0].ID != "dead" {
		t.Fatalf("SessionHolds while held = %+v, %v; want dead", hs, err)
	}
	if ttl, err := s.c.PTTL(ctx, s.k.sessionHolds("vgs_dead")).Result(); err != nil || ttl <= time.Hour || ttl > s.recordTTL() {
		t.Errorf("session list ttl = %s, %v; want the record's (%s)", ttl, err, s.recordTTL())
	}
	eventually(t, 3*time.Second, "hold released", func() bool {
		_, reserved, err := s.Spent(ctx, acct.Key)
		if err != nil {
			t.Fatal(err)
		}
		return reserved == 0
	})
	if hs, err := s.SessionHolds(ctx, "vgs_dead"); err != nil || len(hs) != 0 {
		t.Fatalf("SessionHolds after expiry = %+v, %v; want none", hs, err)
	}
	if n, err := s.c.LLen(ctx, s.k.sessionHolds("vgs_dead")).Result(); err != nil || n != 0 {
		t.Errorf("session list holds %d ids after expiry, %v; want 0", n, err)
	}
	if err := s.Settle(ctx, "dead", 250); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, s, acct.Key, 250, 0)
	if res, err := s.Reserve(ctx, store.Reservation{ID: "next", Accounts: []store.BudgetAccount{acct}, Want: 1000, Min: 1}); err != nil || res.Granted != 750 {
		t.Fatalf("reserve after expiry: %+v, %v; want 750", res, err)
	}
}

func TestReserveAccountNamedTwice(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	a := store.BudgetAccount{Key: "user:day:dave", LimitNano: 100}
	res, err := s.Reserve(ctx, store.Reservation{ID: "r", Accounts: []store.BudgetAccount{a, a}, Want: 100, Min: 1})
	if err != nil || res.Granted != 100 {
		t.Fatalf("reserve: %+v, %v", res, err)
	}
	checkSpent(t, s, a.Key, 0, 100)
	if err := s.Settle(ctx, "r", 60); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, s, a.Key, 60, 0)
	if err := s.Charge(ctx, []store.BudgetAccount{a, a}, 10); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, s, a.Key, 70, 0)
}
