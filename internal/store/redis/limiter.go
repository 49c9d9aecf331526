package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Allow takes one event from the GCRA bucket key. The script reads the
// Redis server's clock, so instances with skewed clocks still share one
// limit. The emission interval is rounded up to the next microsecond: the
// limiter may grant a hair less than Rate per Period, never more.
func (s *Store) Allow(ctx context.Context, key string, l store.Limit) (store.LimitResult, error) {
	if l.Rate <= 0 || l.Period <= 0 {
		return store.LimitResult{}, fmt.Errorf("redis: allow %q: invalid limit %d per %s", key, l.Rate, l.Period)
	}
	burst := l.Burst
	if burst < 1 {
		burst = 1
	}
	periodUS := l.Period.Microseconds()
	interval := (periodUS + int64(l.Rate) - 1) / int64(l.Rate)
	if interval < 1 {
		interval = 1
	}
	vals, err := gcraScript.Run(ctx, s.c, []string{s.k.rate(key)}, s.clockArgs(interval, burst, 1)...).Int64Slice()
	if err != nil {
		return store.LimitResult{}, unavailable("allow", err)
	}
	if len(vals) != 4 {
		return store.LimitResult{}, fmt.Errorf("%w: redis allow: unexpected reply %v", store.ErrUnavailable, vals)
	}
	return store.LimitResult{
		Allowed:    vals[0] == 1,
		Remaining:  int(vals[1]),
		RetryAfter: time.Duration(vals[2]) * time.Microsecond,
		ResetAfter: time.Duration(vals[3]) * time.Microsecond,
	}, nil
}
