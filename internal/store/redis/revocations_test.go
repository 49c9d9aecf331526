package redis

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func receive(t *testing.T, ch <-chan store.Revocation, within time.Duration) store.Revocation {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("revocation channel closed")
		}
		return r
	case <-time.After(within):
		t.Fatalf("no revocation within %s", within)
	}
	return store.Revocation{}
}

func expectNone(t *testing.T, ch <-chan store.Revocation, within time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected revocation %+v", r)
	case <-time.After(within):
	}
}

func TestRevocationsReachEveryInstance(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	pub, sub1, sub2 := open(t, url, prefix), open(t, url, prefix), open(t, url, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := sub1.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := sub2.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	want := store.Revocation{Kind: "session", ID: "vgs_1", At: at}
	if err := pub.PublishRevocation(ctx, want); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan store.Revocation{ch1, ch2} {
		if got := receive(t, ch, 2*time.Second); got.Kind != want.Kind || got.ID != want.ID || !got.At.Equal(at) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	expectNone(t, ch1, 50*time.Millisecond)

	cancel()
	for _, ch := range []<-chan store.Revocation{ch1, ch2} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Fatal("value after cancel")
			}
		case <-time.After(3 * time.Second):
			t.Fatal("channel not closed after ctx was cancelled")
		}
	}
}

// TestRevocationsSurviveRedisRestart: a subscription outlives a Redis
// restart (go-redis resubscribes) and receives what is published after.
func TestRevocationsSurviveRedisRestart(t *testing.T) {
	url, _, restart := testServer(t)
	prefix := uniquePrefix()
	pub, sub := open(t, url, prefix), open(t, url, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "before"}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ch, 2*time.Second); got.ID != "before" {
		t.Fatalf("got %+v", got)
	}

	restart()
	eventually(t, 5*time.Second, "publish after restart", func() bool {
		return pub.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "after"}) == nil
	})
	if got := receive(t, ch, 5*time.Second); got.ID != "after" {
		t.Fatalf("got %+v, want the revocation published after the restart", got)
	}
	expectNone(t, ch, 100*time.Millisecond)
}

// TestRevocationsCaughtUpAfterDisconnect: the subscriber's connection is
// killed and a revocation published while it reconnects; it still arrives,
// exactly once (from the capped log if the live message was missed).
func TestRevocationsCaughtUpAfterDisconnect(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	pub, sub := open(t, url, prefix), open(t, url, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := pub.c.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		if err := pub.PublishRevocation(ctx, store.Revocation{Kind: "app_key", ID: id}); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, ch, 5*time.Second); got.ID != id {
			t.Fatalf("round %d: got %+v, want %s", i, got, id)
		}
	}
	expectNone(t, ch, 200*time.Millisecond)
}

// TestSubscriptionGoroutinesExit: every goroutine a subscription starts
// returns once its context is done.
func TestSubscriptionGoroutinesExit(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	if err := s.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	for range 5 {
		subCtx, cancel := context.WithCancel(ctx)
		ch, err := s.SubscribeRevocations(subCtx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "x"}); err != nil {
			t.Fatal(err)
		}
		receive(t, ch, 2*time.Second)
		cancel()
		for range ch {
		}
	}
	eventually(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", base), func() bool {
		return runtime.NumGoroutine() <= base
	})
}
