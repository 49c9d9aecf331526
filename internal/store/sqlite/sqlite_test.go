package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

// openFile opens path with a fast poll so revocation tests stay quick.
func openFile(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, path, append([]sqlite.Option{sqlite.WithPollInterval(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "voicegate.db")
		return func() store.Store { return openFile(t, path) }
	})
}

func TestClockConformance(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) func() store.Store {
		path := filepath.Join(t.TempDir(), "voicegate.db")
		return func() store.Store { return openFile(t, path, sqlite.WithNow(now)) }
	})
}

func BenchmarkHotPaths(b *testing.B) {
	storetest.Bench(b, func(tb testing.TB) func() store.Store {
		path := filepath.Join(tb.TempDir(), "voicegate.db")
		return func() store.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				tb.Fatal(err)
			}
			return s
		}
	})
}
