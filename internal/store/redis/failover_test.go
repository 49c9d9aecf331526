package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// TestUnavailableWhileStopped: with Redis gone, Ping fails fast and every
// method returns store.ErrUnavailable; after a restart the same handle
// works again without being reopened.
func TestUnavailableWhileStopped(t *testing.T) {
	url, stop, restart := testServer(t)
	s := open(t, url, uniquePrefix(), WithPingTimeout(300*time.Millisecond))
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	stop()
	start := time.Now()
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Ping took %s with Redis down, want fail fast", took)
	}
	checks := map[string]func() error{
		"Allow": func() error { _, err := s.Allow(ctx, "k", store.PerSecond(1)); return err },
		"AcquireLease": func() error {
			_, err := s.AcquireLease(ctx, "k", "h", 1, time.Second)
			return err
		},
		"Reserve": func() error {
			_, err := s.Reserve(ctx, store.Reservation{ID: "r", Accounts: []store.BudgetAccount{{Key: "a"}}, Want: 1})
			return err
		},
		"RecordUsage": func() error {
			_, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "s", ResponseID: "r"})
			return err
		},
		"Session":           func() error { _, err := s.Session(ctx, "vgs_x"); return err },
		"AppendAudit":       func() error { return s.AppendAudit(ctx, store.AuditEntry{Kind: "mint"}) },
		"PublishRevocation": func() error { return s.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "u"}) },
		"Subscribe":         func() error { _, err := s.SubscribeRevocations(ctx); return err },
	}
	for name, f := range checks {
		if err := f(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
	}

	restart()
	eventually(t, 5*time.Second, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	// The restarted Redis has an empty script cache: EVALSHA falls back.
	res, err := s.Allow(ctx, "k", store.PerSecond(1))
	if err != nil || !res.Allowed {
		t.Fatalf("Allow after restart: %+v, %v", res, err)
	}
	if ok, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "s", ResponseID: "r"}); err != nil || !ok {
		t.Fatalf("RecordUsage after restart: %v, %v", ok, err)
	}
	if r, err := s.Reserve(ctx, store.Reservation{ID: "r", Accounts: []store.BudgetAccount{{Key: "a", LimitNano: 10}}, Want: 5}); err != nil || r.Granted != 5 {
		t.Fatalf("Reserve after restart: %+v, %v", r, err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, url := range []string{
		"redis://:s3cretpass@127.0.0.1:1/0", // nothing listens on port 1
		"redis://:s3cretpass@127.0.0.1:x/0", // bad port
		"bogus://:s3cretpass@127.0.0.1:1/0", // bad scheme
	} {
		_, err := Open(ctx, url)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), "s3cretpass") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}
