package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis"
)

// Open a store shared by every gateway instance and take one event from a
// per-user rate limit; Redis being down is store.ErrUnavailable, on which
// the gateway fails closed.
func ExampleOpen() {
	ctx := context.Background()
	s, err := redis.Open(ctx, "redis://127.0.0.1:6379/0", redis.WithPrefix("vg:"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	res, err := s.Allow(ctx, "mint:user:alice", store.PerMinute(10))
	switch {
	case errors.Is(err, store.ErrUnavailable):
		fmt.Println("503: store unavailable")
	case err != nil:
		log.Fatal(err)
	case !res.Allowed:
		fmt.Printf("429: retry after %s\n", res.RetryAfter.Round(time.Second))
	default:
		fmt.Printf("allowed, %d left\n", res.Remaining)
	}
}
