package storetest

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var budgetTests = []test{
	{"ReserveClampsToTightest", testBudgetReserveClamp},
	{"RefuseWhenMinDoesNotFit", testBudgetRefuse},
	{"Unlimited", testBudgetUnlimited},
	{"SettleAndCharge", testBudgetSettle},
	{"ConcurrentNeverOverspend", testBudgetConcurrent},
	{"SessionHolds", testBudgetSessionHolds},
}

func account(key string, limit int64) store.BudgetAccount {
	return store.BudgetAccount{Key: key, LimitNano: limit, ExpiresAt: time.Now().Add(time.Hour)}
}

func reserve(t *testing.T, s store.Store, r store.Reservation) store.ReserveResult {
	t.Helper()
	res, err := s.Reserve(t.Context(), r)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", r.ID, err)
	}
	return res
}

func checkSpent(t *testing.T, s store.Store, key string, wantSpent, wantReserved int64) {
	t.Helper()
	spent, reserved, err := s.Spent(t.Context(), key)
	if err != nil {
		t.Fatalf("Spent(%s): %v", key, err)
	}
	if spent != wantSpent || reserved != wantReserved {
		t.Errorf("Spent(%s) = %d, %d; want %d, %d", key, spent, reserved, wantSpent, wantReserved)
	}
}

func testBudgetReserveClamp(t *testing.T, h *harness) {
	a, b := h.two(t)
	session, user := account("session:vgs_1", 1000), account("user:day:alice", 300)
	accts := []store.BudgetAccount{session, user}
	tests := []struct {
		name          string
		want, min     int64
		wantGranted   int64
		wantRemaining int64
	}{
		{"fits", 100, 10, 100, 200},
		{"clamped to the tightest account", 500, 50, 200, 0},
	}
	for i, tc := range tests {
		s := []store.Store{a, b}[i%2]
		got := reserve(t, s, store.Reservation{ID: fmt.Sprintf("r%d", i), Accounts: accts, Want: tc.want, Min: tc.min})
		if got.Granted != tc.wantGranted || got.Remaining != tc.wantRemaining {
			t.Errorf("%s: Reserve = %+v, want Granted %d Remaining %d", tc.name, got, tc.wantGranted, tc.wantRemaining)
		}
	}
	checkSpent(t, a, session.Key, 0, 300)
	checkSpent(t, b, user.Key, 0, 300)
	checkSpent(t, b, "user:day:nobody", 0, 0)
	// Another user's account is untouched by alice's holds.
	got := reserve(t, a, store.Reservation{ID: "r-bob", Accounts: []store.BudgetAccount{account("user:day:bob", 300)}, Want: 300, Min: 300})
	if got.Granted != 300 || got.Remaining != 0 {
		t.Errorf("Reserve on bob = %+v, want Granted 300 Remaining 0", got)
	}
}

func testBudgetRefuse(t *testing.T, h *harness) {
	a, b := h.two(t)
	acct := account("key:month:key_a", 1000)
	if got := reserve(t, a, store.Reservation{ID: "r1", Accounts: []store.BudgetAccount{acct}, Want: 800, Min: 800}); got.Granted != 800 {
		t.Fatalf("Reserve(r1) = %+v, want 800 granted", got)
	}
	if err := a.Charge(t.Context(), []store.BudgetAccount{acct}, 150); err != nil {
		t.Fatal(err)
	}
	got := reserve(t, b, store.Reservation{ID: "r2", Accounts: []store.BudgetAccount{acct}, Want: 100, Min: 60})
	if got.Granted != 0 {
		t.Errorf("Reserve with Min 60 and 50 left = %+v, want refused", got)
	}
	if got.Remaining != 50 {
		t.Errorf("refused Reserve: Remaining = %d, want 50", got.Remaining)
	}
	checkSpent(t, a, acct.Key, 150, 800)
	// A refused reservation holds nothing, so settling it changes nothing but
	// the charge.
	if err := b.Settle(t.Context(), "r2", 0); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, a, acct.Key, 150, 800)
	if got := reserve(t, b, store.Reservation{ID: "r3", Accounts: []store.BudgetAccount{acct}, Want: 100, Min: 50}); got.Granted != 50 || got.Remaining != 0 {
		t.Errorf("Reserve with Min 50 and 50 left = %+v, want 50 granted, 0 remaining", got)
	}
	checkSpent(t, a, acct.Key, 150, 850)
}

func testBudgetUnlimited(t *testing.T, h *harness) {
	s := h.handle(t)
	free := account("user:day:free", 0)
	got := reserve(t, s, store.Reservation{ID: "r1", Accounts: []store.BudgetAccount{free}, Want: 1e12, Min: 1})
	if got.Granted != 1e12 || got.Remaining != math.MaxInt64 {
		t.Errorf("Reserve on an unlimited account = %+v, want all granted, Remaining MaxInt64", got)
	}
	checkSpent(t, s, free.Key, 0, 1e12)
	// An unlimited account does not relax a limited one.
	got = reserve(t, s, store.Reservation{ID: "r2", Accounts: []store.BudgetAccount{free, account("session:vgs_1", 70)}, Want: 100, Min: 1})
	if got.Granted != 70 || got.Remaining != 0 {
		t.Errorf("Reserve on unlimited+70 = %+v, want Granted 70 Remaining 0", got)
	}
	checkSpent(t, s, free.Key, 0, 1e12+70)
}

func testBudgetSettle(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	s1, u := account("session:vgs_1", 1000), account("user:day:alice", 5000)
	accts := []store.BudgetAccount{s1, u}
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:1", Accounts: accts, Want: 400, Min: 100}); got.Granted != 400 {
		t.Fatalf("Reserve = %+v", got)
	}
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:2", Accounts: accts, Want: 300, Min: 100}); got.Granted != 300 {
		t.Fatalf("Reserve = %+v", got)
	}
	checkSpent(t, b, s1.Key, 0, 700)
	// Settle charges the actual cost (less than held) and frees the hold.
	if err := b.Settle(ctx, "vgs_1:1", 250); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	checkSpent(t, a, s1.Key, 250, 300)
	checkSpent(t, a, u.Key, 250, 300)
	// Settling again, from either handle, is a no-op.
	for _, s := range []store.Store{a, b} {
		if err := s.Settle(ctx, "vgs_1:1", 250); err != nil {
			t.Fatalf("second Settle: %v", err)
		}
	}
	checkSpent(t, b, s1.Key, 250, 300)
	if err := a.Settle(ctx, "never-reserved", 999); err != nil {
		t.Fatalf("Settle(unknown): %v", err)
	}
	checkSpent(t, b, s1.Key, 250, 300)
	// Actual may exceed the hold (the response cost more than reserved).
	if err := a.Settle(ctx, "vgs_1:2", 500); err != nil {
		t.Fatal(err)
	}
	checkSpent(t, b, s1.Key, 750, 0)
	checkSpent(t, b, u.Key, 750, 0)
	// Charge adds spend without a reservation, even beyond the limit.
	if err := b.Charge(ctx, accts, 400); err != nil {
		t.Fatalf("Charge: %v", err)
	}
	checkSpent(t, a, s1.Key, 1150, 0)
	checkSpent(t, a, u.Key, 1150, 0)
	got := reserve(t, a, store.Reservation{ID: "vgs_1:3", Accounts: accts, Want: 100, Min: 1})
	if got.Granted != 0 || got.Remaining != 0 {
		t.Errorf("Reserve on an overspent account = %+v, want refused with Remaining 0", got)
	}
	checkSpent(t, a, s1.Key, 1150, 0)
}

func testBudgetConcurrent(t *testing.T, h *harness) {
	a, b := h.two(t)
	const limit, want, min = 1000, 100, 30
	acct := account("user:day:race", limit)
	const workers, each = 5, 4 // per handle: 40 reservations asking 4000 in all
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		for w := range workers {
			wg.Go(func() {
				for n := range each {
					r, err := s.Reserve(t.Context(), store.Reservation{
						ID: fmt.Sprintf("r-%d-%d-%d", i, w, n), Accounts: []store.BudgetAccount{acct}, Want: want, Min: min,
					})
					if err != nil {
						t.Errorf("Reserve: %v", err)
						return
					}
					if r.Granted != 0 && (r.Granted < min || r.Granted > want) {
						t.Errorf("Granted %d outside [Min, Want]", r.Granted)
					}
					granted.Add(r.Granted)
				}
			})
		}
	}
	wg.Wait()
	total := granted.Load()
	if total > limit {
		t.Errorf("concurrent reservations granted %d in all, over the limit %d", total, limit)
	}
	if total <= limit-min {
		t.Errorf("granted only %d of %d although every refusal should leave less than Min %d", total, limit, min)
	}
	checkSpent(t, a, acct.Key, 0, total)
}

func sessionHolds(t *testing.T, s store.Store, session string) []store.Hold {
	t.Helper()
	hs, err := s.SessionHolds(t.Context(), session)
	if err != nil {
		t.Fatalf("SessionHolds(%q): %v", session, err)
	}
	return hs
}

func checkHolds(t *testing.T, s store.Store, session string, want []store.Hold) {
	t.Helper()
	got := sessionHolds(t, s, session)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SessionHolds(%q) = %+v, want %+v", session, got, want)
	}
}

func testBudgetSessionHolds(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	sess, user := account("session:vgs_1", 1000), account("user:day:alice", 5000)
	accts := []store.BudgetAccount{user, sess} // listed sorted whatever the order here
	keys := []string{sess.Key, user.Key}
	// Ids sort against the grant order, so only the order of grants can
	// list them oldest first.
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:b", Session: "vgs_1", Accounts: accts, Want: 300, Min: 100}); got.Granted != 300 {
		t.Fatalf("Reserve(vgs_1:b) = %+v", got)
	}
	if got := reserve(t, b, store.Reservation{ID: "vgs_1:a", Session: "vgs_1", Accounts: accts, Want: 900, Min: 100}); got.Granted != 700 {
		t.Fatalf("Reserve(vgs_1:a) = %+v, want 700 granted", got)
	}
	// Refused: holds nothing, so not listed.
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:c", Session: "vgs_1", Accounts: accts, Want: 100, Min: 100}); got.Granted != 0 {
		t.Fatalf("Reserve(vgs_1:c) = %+v, want refused", got)
	}
	// A retried Reserve answers the first grant and is listed once.
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:b", Session: "vgs_1", Accounts: accts, Want: 300, Min: 100}); got.Granted != 300 {
		t.Fatalf("retried Reserve(vgs_1:b) = %+v", got)
	}
	free := account("user:day:bob", 0)
	if got := reserve(t, b, store.Reservation{ID: "vgs_2:a", Session: "vgs_2", Accounts: []store.BudgetAccount{free}, Want: 1e12, Min: 1}); got.Granted != 1e12 {
		t.Fatalf("Reserve(vgs_2:a) = %+v", got)
	}
	if got := reserve(t, b, store.Reservation{ID: "nosession", Accounts: []store.BudgetAccount{free}, Want: 5, Min: 1}); got.Granted != 5 {
		t.Fatalf("Reserve(nosession) = %+v", got)
	}

	vgs1 := []store.Hold{{ID: "vgs_1:b", Amount: 300, Accounts: keys}, {ID: "vgs_1:a", Amount: 700, Accounts: keys}}
	for _, s := range []store.Store{a, b} {
		checkHolds(t, s, "vgs_1", vgs1)
		checkHolds(t, s, "vgs_2", []store.Hold{{ID: "vgs_2:a", Amount: 1e12, Accounts: []string{free.Key}}})
		checkHolds(t, s, "vgs_3", nil)
		checkHolds(t, s, "", nil) // reservations without a session are nobody's
	}

	// Settle ends a hold, from any handle; settling again changes nothing.
	for range 2 {
		if err := b.Settle(ctx, "vgs_1:b", 120); err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}
	checkHolds(t, a, "vgs_1", vgs1[1:])
	if err := a.Settle(ctx, "vgs_1:a", 0); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	checkHolds(t, b, "vgs_1", nil)
	checkHolds(t, b, "vgs_2", []store.Hold{{ID: "vgs_2:a", Amount: 1e12, Accounts: []string{free.Key}}})
	checkSpent(t, a, sess.Key, 120, 0)

	// A session's next reservation is listed after the session's earlier
	// ones were settled.
	if got := reserve(t, a, store.Reservation{ID: "vgs_1:d", Session: "vgs_1", Accounts: accts, Want: 50, Min: 1}); got.Granted != 50 {
		t.Fatalf("Reserve(vgs_1:d) = %+v", got)
	}
	checkHolds(t, b, "vgs_1", []store.Hold{{ID: "vgs_1:d", Amount: 50, Accounts: keys}})
}
