package redis

import (
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

// TestConformance runs the shared store suite against one redis-server,
// each subtest on its own key prefix (a fresh, empty backend).
func TestConformance(t *testing.T) {
	url, _, _ := redistest.Start(t)
	storetest.Run(t, conformanceBackend(url))
}

// TestConformanceCluster runs the suite against a one-node Redis Cluster,
// which refuses any command whose keys span hash slots.
func TestConformanceCluster(t *testing.T) {
	url := "redis+cluster://" + redistest.StartCluster(t)
	storetest.Run(t, conformanceBackend(url))
}

func conformanceBackend(url string) func(t *testing.T) func() store.Store {
	return func(t *testing.T) func() store.Store {
		prefix := uniquePrefix()
		return func() store.Store {
			s, err := Open(t.Context(), url, WithPrefix(prefix))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	}
}

// withScriptClock replaces the Redis server's clock in the rate-limit and
// lease scripts, so the exact-time checks of the suite run against the
// very scripts production uses.
func withScriptClock(now func() time.Time) Option {
	return func(s *Store) { s.scriptClock = now }
}

// TestConformanceClock checks GCRA and lease arithmetic to the microsecond
// with an injected clock.
func TestConformanceClock(t *testing.T) {
	url, _, _ := redistest.Start(t)
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) func() store.Store {
		prefix := uniquePrefix()
		return func() store.Store {
			s, err := Open(t.Context(), url, WithPrefix(prefix), withScriptClock(now))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}
