package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
)

// openCluster opens a Store on a one-node Redis Cluster, which refuses any
// multi-key command or script whose keys span hash slots.
func openCluster(t *testing.T, addr string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "redis+cluster://"+addr, WithPrefix(uniquePrefix()))
	if err != nil {
		t.Fatalf("Open cluster: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, ok := s.c.(*goredis.ClusterClient); !ok {
		t.Fatalf("client is %T, want a cluster client", s.c)
	}
	return s
}

// TestClusterHashTags runs every multi-key operation against a cluster
// node: a key layout whose tags were wrong would fail with CROSSSLOT.
func TestClusterHashTags(t *testing.T) {
	s := openCluster(t, redistest.StartCluster(t))
	ctx := context.Background()
	now := time.Now()

	sess := &store.Session{ID: "vgs_c", TokenHash: "th", User: "u1", AppKeyID: "key_c", CreatedAt: now, ExpiresAt: now.Add(time.Minute), State: store.StateMinted}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSession(ctx, "vgs_c", func(x *store.Session) error { x.State = store.StateLive; return nil }); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListSessions(ctx, store.SessionFilter{}); err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if _, err := s.SessionByTokenHash(ctx, "th"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUser(ctx, "u1", now); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, &store.AppKey{ID: "key_c", Hash: "kh", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "key_c", now); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.ListKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	for i := range 3 {
		if _, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: fmt.Sprintf("vgs_%d", i), ResponseID: "r", User: "u1", AppKeyID: "key_c", At: now}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.LedgerEntries(ctx, store.LedgerFilter{User: "u1"}); err != nil || len(got) != 3 {
		t.Fatalf("ledger: %v, %v", got, err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "mint"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AuditEntries(ctx, store.AuditFilter{}); err != nil || len(got) != 1 {
		t.Fatalf("audit: %v, %v", got, err)
	}
	accts := []store.BudgetAccount{
		{Key: "session:vgs_c", LimitNano: 100, ExpiresAt: now.Add(time.Hour)},
		{Key: "user:day:u1:2026-11-29", LimitNano: 1000, ExpiresAt: now.Add(time.Hour)},
		{Key: "key:month:key_c:2026-11", LimitNano: 5000},
	}
	if res, err := s.Reserve(ctx, store.Reservation{ID: "vgs_c:1", Accounts: accts, Want: 80, Min: 10}); err != nil || res.Granted != 80 {
		t.Fatalf("reserve: %+v, %v", res, err)
	}
	if err := s.Settle(ctx, "vgs_c:1", 30); err != nil {
		t.Fatal(err)
	}
	if err := s.Charge(ctx, accts, 5); err != nil {
		t.Fatal(err)
	}
	if spent, reserved, err := s.Spent(ctx, "user:day:u1:2026-11-29"); err != nil || spent != 35 || reserved != 0 {
		t.Fatalf("spent: %d %d %v", spent, reserved, err)
	}
	if _, err := s.Allow(ctx, "mint:user:u1", store.PerMinute(10)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(ctx, "conc:user:u1", "h", 1, time.Minute); err != nil || !ok {
		t.Fatalf("lease: %v, %v", ok, err)
	}
	if n, err := s.LeaseCount(ctx, "conc:user:u1"); err != nil || n != 1 {
		t.Fatalf("lease count: %d, %v", n, err)
	}

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.SubscribeRevocations(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PublishRevocation(ctx, store.Revocation{Kind: "session", ID: "vgs_c"}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ch, 2*time.Second); got.ID != "vgs_c" {
		t.Fatalf("revocation: %+v", got)
	}
}
