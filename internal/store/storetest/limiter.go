package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var limiterTests = []test{
	{"Burst", testLimiterBurst},
	{"KeysIndependent", testLimiterKeysIndependent},
	{"ConcurrentNoOverGrant", testLimiterConcurrent},
	{"Refill", testLimiterRefill},
}

func allow(t *testing.T, s store.Store, key string, l store.Limit) store.LimitResult {
	t.Helper()
	r, err := s.Allow(t.Context(), key, l)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return r
}

func testLimiterBurst(t *testing.T, h *harness) {
	a, b := h.two(t)
	// One event per 12 minutes: nothing refills while the test runs.
	l := store.Limit{Rate: 5, Period: time.Hour, Burst: 5}
	for i := range 5 {
		s := []store.Store{a, b}[i%2]
		r := allow(t, s, "mint:alice", l)
		if !r.Allowed {
			t.Fatalf("call %d refused within the burst: %+v", i+1, r)
		}
		if want := 4 - i; r.Remaining != want {
			t.Errorf("call %d: Remaining = %d, want %d", i+1, r.Remaining, want)
		}
		if r.RetryAfter != 0 {
			t.Errorf("call %d: allowed with RetryAfter %v, want 0", i+1, r.RetryAfter)
		}
		if r.ResetAfter <= 0 || r.ResetAfter > time.Duration(i+1)*12*time.Minute+time.Second {
			t.Errorf("call %d: ResetAfter = %v, want about %v", i+1, r.ResetAfter, time.Duration(i+1)*12*time.Minute)
		}
	}
	r := allow(t, a, "mint:alice", l)
	if r.Allowed {
		t.Fatalf("call 6 allowed beyond the burst: %+v", r)
	}
	if r.Remaining != 0 {
		t.Errorf("refused: Remaining = %d, want 0", r.Remaining)
	}
	// The next event is due one emission interval (12 minutes) after the first.
	if r.RetryAfter <= 11*time.Minute || r.RetryAfter > 12*time.Minute {
		t.Errorf("refused: RetryAfter = %v, want just under 12m", r.RetryAfter)
	}
}

func testLimiterKeysIndependent(t *testing.T, h *harness) {
	s := h.handle(t)
	l := store.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	if r := allow(t, s, "k1", l); !r.Allowed {
		t.Fatalf("k1 first call refused: %+v", r)
	}
	if r := allow(t, s, "k1", l); r.Allowed {
		t.Fatalf("k1 second call allowed: %+v", r)
	}
	if r := allow(t, s, "k2", l); !r.Allowed {
		t.Fatalf("k2 refused because of k1: %+v", r)
	}
}

func testLimiterConcurrent(t *testing.T, h *harness) {
	a, b := h.two(t)
	// Burst 12, then one event per 5 minutes: exactly 12 may pass now.
	l := store.Limit{Rate: 12, Period: time.Hour, Burst: 12}
	const workers, each = 6, 6 // per handle: 72 attempts in all
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b} {
		for range workers {
			wg.Go(func() {
				prev := l.Burst
				for range each {
					r, err := s.Allow(t.Context(), "connect:bob", l)
					if err != nil {
						t.Errorf("Allow: %v", err)
						return
					}
					if r.Allowed {
						allowed.Add(1)
						if r.Remaining >= prev {
							t.Errorf("Remaining went from %d to %d: want decreasing", prev, r.Remaining)
						}
						prev = r.Remaining
					} else if r.RetryAfter <= 0 {
						t.Errorf("refused with RetryAfter %v, want > 0", r.RetryAfter)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := allowed.Load(); n != int64(l.Burst) {
		t.Errorf("%d of %d concurrent calls allowed, want exactly the burst %d", n, 2*workers*each, l.Burst)
	}
}

func testLimiterRefill(t *testing.T, h *harness) {
	a, b := h.two(t)
	// 10 per second with no burst beyond one: an event every 100ms.
	l := store.Limit{Rate: 10, Period: time.Second, Burst: 1}
	if r := allow(t, a, "refill", l); !r.Allowed {
		t.Fatalf("first call refused: %+v", r)
	}
	r := allow(t, b, "refill", l)
	if r.Allowed {
		t.Fatalf("second immediate call allowed: %+v", r)
	}
	if r.RetryAfter <= 0 || r.RetryAfter > 100*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want in (0, 100ms]", r.RetryAfter)
	}
	time.Sleep(r.RetryAfter + 10*time.Millisecond)
	if r := allow(t, b, "refill", l); !r.Allowed {
		t.Errorf("call after RetryAfter refused: %+v", r)
	}
	// Over a window the limiter never grants more than burst + rate×elapsed.
	start := time.Now()
	var granted int
	for time.Since(start) < 300*time.Millisecond {
		s := []store.Store{a, b}[granted%2]
		if allow(t, s, "window", l).Allowed {
			granted++
		}
	}
	elapsed := time.Since(start)
	if limit := 1 + int(elapsed/(100*time.Millisecond)); granted > limit {
		t.Errorf("granted %d in %v, more than burst + rate×elapsed = %d", granted, elapsed, limit)
	}
	if granted < 2 {
		t.Errorf("granted only %d in %v at 10/s: the limiter does not refill", granted, elapsed)
	}
}
