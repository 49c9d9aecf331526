package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// Rate limits are exact with an injected clock.
func ExampleStore_Allow() {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := memory.New()
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	l := store.Limit{Rate: 2, Period: time.Second, Burst: 2}
	for range 3 {
		r, _ := s.Allow(ctx, "mint:alice", l)
		fmt.Println(r.Allowed, r.Remaining, r.RetryAfter)
	}
	now = now.Add(500 * time.Millisecond)
	r, _ := s.Allow(ctx, "mint:alice", l)
	fmt.Println(r.Allowed, r.Remaining, r.RetryAfter)
	// Output:
	// true 1 0s
	// true 0 0s
	// false 0 500ms
	// true 0 0s
}
