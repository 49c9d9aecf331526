package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

// TestWriteQueriesPreparedOnce: the writer's queries are prepared once and
// reused (the cache stops growing after the first round), and the cache is
// bounded whatever queries it is asked for.
func TestWriteQueriesPreparedOnce(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vg.db"), WithPruneInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int { s.cache.mu.Lock(); defer s.cache.mu.Unlock(); return len(s.cache.m) }
	round := func(i int) {
		id := fmt.Sprintf("r%d", i)
		accts := []store.BudgetAccount{{Key: "session:vgs_1", LimitNano: 1e12}, {Key: "user:day:alice", LimitNano: 1e12}}
		if _, err := s.Reserve(ctx, store.Reservation{ID: id, Session: "vgs_1", Accounts: accts, Want: 100, Min: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(ctx, id, 50); err != nil {
			t.Fatal(err)
		}
	}
	round(0)
	first := size()
	if first == 0 {
		t.Fatal("no write query was prepared")
	}
	for i := 1; i < 50; i++ {
		round(i)
	}
	if got := size(); got != first {
		t.Errorf("cache grew from %d to %d statements over repeated rounds", first, got)
	}
	for i := range maxCached + 10 {
		s.cache.get(ctx, s.db, fmt.Sprintf("SELECT %d", i))
	}
	if got := size(); got != maxCached {
		t.Errorf("cache holds %d statements, want the bound %d", got, maxCached)
	}
}
