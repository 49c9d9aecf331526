package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestLeasesCapAndRelease(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	a, b := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()

	mustAcquire := func(s *Store, holder string, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, "user:alice", holder, 2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("acquire %s = %v, want %v", holder, got, want)
		}
	}
	mustAcquire(a, "h1", true)
	mustAcquire(b, "h2", true)
	mustAcquire(a, "h3", false)
	mustAcquire(b, "h1", true) // re-acquire renews
	if n, err := a.LeaseCount(ctx, "user:alice"); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
	if err := b.ReleaseLease(ctx, "user:alice", "h1"); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseLease(ctx, "user:alice", "nobody"); err != nil {
		t.Fatalf("release of a holder not present: %v", err)
	}
	mustAcquire(a, "h3", true)
	if err := a.RenewLease(ctx, "user:alice", "h1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renew released lease: err = %v, want ErrNotFound", err)
	}
	if err := a.RenewLease(ctx, "user:alice", "h3", time.Minute); err != nil {
		t.Fatalf("renew held lease: %v", err)
	}
}

// TestLeasesExpireWhenNotRenewed plays an instance that dies holding a
// slot: another instance gets the slot once the ttl passes, and not before.
func TestLeasesExpireWhenNotRenewed(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	dead, alive := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond

	start := time.Now()
	if ok, err := dead.AcquireLease(ctx, "k", "dead", 1, ttl); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	if ok, err := alive.AcquireLease(ctx, "k", "alive", 1, ttl); err != nil || ok {
		t.Fatalf("acquire while held: %v, %v; want refused", ok, err)
	}
	eventually(t, 3*time.Second, "slot freed", func() bool {
		ok, err := alive.AcquireLease(ctx, "k", "alive", 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if waited := time.Since(start); waited < ttl-20*time.Millisecond {
		t.Fatalf("slot freed after %s, before the ttl %s", waited, ttl)
	}
	if n, err := alive.LeaseCount(ctx, "k"); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}

	// A renewed lease does not expire.
	if ok, err := alive.AcquireLease(ctx, "r", "h", 1, ttl); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	for range 4 {
		time.Sleep(ttl / 3)
		if err := alive.RenewLease(ctx, "r", "h", ttl); err != nil {
			t.Fatalf("renew: %v", err)
		}
	}
	if n, err := alive.LeaseCount(ctx, "r"); err != nil || n != 1 {
		t.Fatalf("renewed lease count = %d, %v; want 1", n, err)
	}
}
