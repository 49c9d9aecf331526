package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store/redis/redistest"
)

var prefixSeq atomic.Int64

// testServer starts a redis-server for the test and returns its URL and
// the restart function.
func testServer(t *testing.T) (url string, stop, restart func()) {
	t.Helper()
	return redistest.Start(t)
}

// open opens a handle on url with a prefix unique to this test, plus opts.
func open(t testing.TB, url, prefix string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Open(ctx, url, append([]Option{WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func uniquePrefix() string { return fmt.Sprintf("t%d:", prefixSeq.Add(1)) }

// eventually polls cond until it holds or the deadline passes. It is for
// state driven by Redis's own clock (lease and hold expiry), which a test
// cannot inject.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
