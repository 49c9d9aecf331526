package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var leaseTests = []test{
	{"MaxHolders", testLeaseMaxHolders},
	{"Expiry", testLeaseExpiry},
	{"Renew", testLeaseRenew},
	{"ConcurrentNeverExceedMax", testLeaseConcurrent},
}

func acquire(t *testing.T, s store.Store, key, holder string, max int, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.AcquireLease(t.Context(), key, holder, max, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s): %v", key, holder, err)
	}
	return ok
}

func leaseCount(t *testing.T, s store.Store, key string) int {
	t.Helper()
	n, err := s.LeaseCount(t.Context(), key)
	if err != nil {
		t.Fatalf("LeaseCount(%s): %v", key, err)
	}
	return n
}

func testLeaseMaxHolders(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	const key, ttl = "conc:alice", time.Minute
	if n := leaseCount(t, a, key); n != 0 {
		t.Fatalf("LeaseCount of an unused key = %d", n)
	}
	steps := []struct {
		s      store.Store
		holder string
		want   bool
	}{
		{a, "h1", true},
		{b, "h2", true},
		{a, "h3", false}, // full
		{b, "h1", true},  // re-acquiring a held slot renews it
		{a, "h2", true},
	}
	for _, st := range steps {
		if got := acquire(t, st.s, key, st.holder, 2, ttl); got != st.want {
			t.Errorf("AcquireLease(%s) = %v, want %v", st.holder, got, st.want)
		}
	}
	if n := leaseCount(t, b, key); n != 2 {
		t.Errorf("LeaseCount = %d, want 2", n)
	}
	if n := leaseCount(t, b, "conc:bob"); n != 0 {
		t.Errorf("LeaseCount(other key) = %d, want 0", n)
	}
	if err := b.ReleaseLease(ctx, key, "h1"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if n := leaseCount(t, a, key); n != 1 {
		t.Errorf("LeaseCount after release = %d, want 1", n)
	}
	if !acquire(t, a, key, "h3", 2, ttl) {
		t.Error("AcquireLease(h3) refused after a release freed a slot")
	}
	// Releasing an unknown holder or key is not an error.
	if err := a.ReleaseLease(ctx, key, "nobody"); err != nil {
		t.Errorf("ReleaseLease(unknown holder): %v", err)
	}
	if err := a.ReleaseLease(ctx, "conc:none", "h1"); err != nil {
		t.Errorf("ReleaseLease(unknown key): %v", err)
	}
	if err := a.ReleaseLease(ctx, key, "h1"); err != nil {
		t.Errorf("second ReleaseLease: %v", err)
	}
	if n := leaseCount(t, a, key); n != 2 {
		t.Errorf("LeaseCount = %d, want 2", n)
	}
	// A smaller max applies to new holders only.
	if acquire(t, b, key, "h4", 1, ttl) {
		t.Error("AcquireLease(max 1) granted with 2 holders")
	}
}

func testLeaseExpiry(t *testing.T, h *harness) {
	a, b := h.two(t)
	const key = "conc:expiry"
	if !acquire(t, a, key, "short", 1, 150*time.Millisecond) {
		t.Fatal("first AcquireLease refused")
	}
	if acquire(t, b, key, "other", 1, time.Minute) {
		t.Fatal("AcquireLease granted beyond max before expiry")
	}
	time.Sleep(200 * time.Millisecond)
	if n := leaseCount(t, b, key); n != 0 {
		t.Errorf("LeaseCount after ttl = %d, want 0", n)
	}
	if !acquire(t, b, key, "other", 1, time.Minute) {
		t.Error("AcquireLease refused after the only holder expired")
	}
	// Renewing an expired holder fails: its slot may have been taken.
	if err := a.RenewLease(t.Context(), key, "short", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RenewLease of an expired holder: err = %v, want ErrNotFound", err)
	}
	if n := leaseCount(t, a, key); n != 1 {
		t.Errorf("LeaseCount = %d, want 1", n)
	}
}

func testLeaseRenew(t *testing.T, h *harness) {
	a, b := h.two(t)
	const key = "conc:renew"
	if !acquire(t, a, key, "h1", 1, 250*time.Millisecond) {
		t.Fatal("AcquireLease refused")
	}
	if err := b.RenewLease(t.Context(), key, "h1", time.Minute); err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := leaseCount(t, a, key); n != 1 {
		t.Errorf("LeaseCount after the first ttl of a renewed lease = %d, want 1", n)
	}
	// Re-acquiring renews too (and may shorten).
	if !acquire(t, b, key, "h1", 1, 40*time.Millisecond) {
		t.Fatal("re-acquire refused")
	}
	time.Sleep(90 * time.Millisecond)
	if n := leaseCount(t, a, key); n != 0 {
		t.Errorf("LeaseCount after the re-acquired ttl = %d, want 0", n)
	}
	if err := a.RenewLease(t.Context(), key, "never", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RenewLease of an unknown holder: err = %v, want ErrNotFound", err)
	}
	if err := a.RenewLease(t.Context(), "conc:none", "h1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RenewLease of an unknown key: err = %v, want ErrNotFound", err)
	}
}

func testLeaseConcurrent(t *testing.T, h *harness) {
	a, b := h.two(t)
	const key, max, workers = "conc:race", 3, 8 // workers per handle
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		for w := range workers {
			wg.Go(func() {
				ok, err := s.AcquireLease(t.Context(), key, fmt.Sprintf("h%d-%d", i, w), max, time.Minute)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := granted.Load(); n != max {
		t.Errorf("%d concurrent acquirers granted, want exactly %d", n, max)
	}
	if n := leaseCount(t, a, key); n != max {
		t.Errorf("LeaseCount = %d, want %d", n, max)
	}
}
