package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestAllowBurstThenRefuse(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	l := store.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	for i := range 3 {
		res, err := s.Allow(ctx, "k", l)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || res.Remaining != 2-i {
			t.Fatalf("call %d: got %+v, want allowed with remaining %d", i, res, 2-i)
		}
	}
	res, err := s.Allow(ctx, "k", l)
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || res.Remaining != 0 {
		t.Fatalf("4th call: got %+v, want refused", res)
	}
	if res.RetryAfter <= 59*time.Minute || res.RetryAfter > time.Hour {
		t.Fatalf("RetryAfter = %s, want about 1h", res.RetryAfter)
	}
	if res.ResetAfter <= 2*time.Hour || res.ResetAfter > 3*time.Hour {
		t.Fatalf("ResetAfter = %s, want about 3h", res.ResetAfter)
	}
	// Another key is independent.
	if res, err := s.Allow(ctx, "other", l); err != nil || !res.Allowed {
		t.Fatalf("other key: %+v, %v", res, err)
	}
	if _, err := s.Allow(ctx, "k", store.Limit{}); err == nil {
		t.Fatal("zero limit: want an error")
	}
}

// TestAllowConcurrentNeverOverGrants hammers one key from 64 goroutines on
// each of two handles (two "instances") for about a second: the number
// allowed must never exceed burst + rate × elapsed.
func TestAllowConcurrentNeverOverGrants(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	handles := []*Store{open(t, url, prefix), open(t, url, prefix)}
	l := store.Limit{Rate: 200, Period: time.Second, Burst: 20}

	ctx := context.Background()
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stopAt := start.Add(time.Second)
	for _, h := range handles {
		for range 64 {
			wg.Go(func() {
				for time.Now().Before(stopAt) {
					res, err := h.Allow(ctx, "hot", l)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					} else {
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	maxAllowed := int64(l.Burst) + int64(float64(l.Rate)*elapsed.Seconds())
	got := allowed.Load()
	t.Logf("allowed %d, refused %d in %s (bound %d)", got, refused.Load(), elapsed, maxAllowed)
	if got > maxAllowed {
		t.Fatalf("over-grant: allowed %d > burst + rate×elapsed = %d", got, maxAllowed)
	}
	if refused.Load() == 0 {
		t.Fatal("nothing refused: the test did not saturate the limit")
	}
	// Contention must not starve the limiter either: it should grant close
	// to the bound over the time Redis actually saw requests.
	if minAllowed := int64(l.Burst) + int64(float64(l.Rate)*0.5*time.Second.Seconds()); got < minAllowed {
		t.Fatalf("under-grant: allowed %d < %d", got, minAllowed)
	}
}
