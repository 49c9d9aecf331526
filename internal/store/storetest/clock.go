package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Clock is a settable clock for RunClock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// RunClock checks the time-based semantics exactly, for backends whose clock
// can be injected (memory, SQLite; not Redis, which uses the server's clock).
// newBackend creates a fresh backend reading the given clock and returns a
// function opening handles on it, as for Run.
func RunClock(t *testing.T, newBackend func(t *testing.T, now func() time.Time) (open func() store.Store)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store, c *Clock)
	}{
		{"GCRAExact", testClockGCRA},
		{"GCRAWindow", testClockGCRAWindow},
		{"LeaseExpiryExact", testClockLease},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
			h := &harness{open: newBackend(t, c.Now)}
			tc.fn(t, h.handle(t), c)
		})
	}
}

func testClockGCRA(t *testing.T, s store.Store, c *Clock) {
	l := store.Limit{Rate: 10, Period: time.Second, Burst: 3} // one per 100ms, bursts of 3
	steps := []struct {
		advance time.Duration
		want    store.LimitResult
	}{
		{0, store.LimitResult{Allowed: true, Remaining: 2, ResetAfter: 100 * time.Millisecond}},
		{0, store.LimitResult{Allowed: true, Remaining: 1, ResetAfter: 200 * time.Millisecond}},
		{0, store.LimitResult{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}},
		{0, store.LimitResult{RetryAfter: 100 * time.Millisecond, ResetAfter: 300 * time.Millisecond}},
		{99 * time.Millisecond, store.LimitResult{RetryAfter: time.Millisecond, ResetAfter: 201 * time.Millisecond}},
		{time.Millisecond, store.LimitResult{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}},
		{time.Second, store.LimitResult{Allowed: true, Remaining: 2, ResetAfter: 100 * time.Millisecond}},
	}
	for i, st := range steps {
		c.Advance(st.advance)
		got := allow(t, s, "k", l)
		if got != st.want {
			t.Errorf("step %d (+%v): Allow = %+v, want %+v", i, st.advance, got, st.want)
		}
	}
}

func testClockGCRAWindow(t *testing.T, s store.Store, c *Clock) {
	l := store.Limit{Rate: 10, Period: time.Second, Burst: 3}
	var granted int
	for range 1000 { // one call every 10ms for 10s
		if allow(t, s, "k", l).Allowed {
			granted++
		}
		c.Advance(10 * time.Millisecond)
	}
	// The burst of 3 at once, then one per 100ms at 100ms, 200ms, … 9900ms.
	if want := 3 + 99; granted != want {
		t.Errorf("granted %d calls in 10s, want burst + rate×elapsed = %d", granted, want)
	}
}

func testClockLease(t *testing.T, s store.Store, c *Clock) {
	if !acquire(t, s, "k", "h1", 1, 10*time.Second) {
		t.Fatal("AcquireLease refused")
	}
	c.Advance(10*time.Second - time.Nanosecond)
	if n := leaseCount(t, s, "k"); n != 1 {
		t.Errorf("LeaseCount just before ttl = %d, want 1", n)
	}
	if acquire(t, s, "k", "h2", 1, 10*time.Second) {
		t.Error("AcquireLease granted a full slot just before ttl")
	}
	c.Advance(time.Nanosecond)
	if n := leaseCount(t, s, "k"); n != 0 {
		t.Errorf("LeaseCount at ttl = %d, want 0", n)
	}
	if err := s.RenewLease(t.Context(), "k", "h1", time.Minute); err == nil {
		t.Error("RenewLease of an expired holder succeeded")
	}
	if !acquire(t, s, "k", "h2", 1, 10*time.Second) {
		t.Error("AcquireLease refused after the holder expired")
	}
}
