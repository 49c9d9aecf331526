package memory

import (
	"fmt"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestStaleEntriesCollected(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := New()
	s.Now = func() time.Time { return now }
	ctx := t.Context()
	for i := range gcEvery/2 - 1 {
		if _, err := s.Allow(ctx, fmt.Sprintf("ip:%d", i), store.PerMinute(10)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquireLease(ctx, fmt.Sprintf("conc:%d", i), "h", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := s.Allow(ctx, "ip:last", store.PerMinute(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "conc:last", "h", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(s.tat) != 1 || len(s.leases) != 1 {
		t.Errorf("after gc: %d rate-limit keys and %d lease keys, want 1 and 1", len(s.tat), len(s.leases))
	}
}
