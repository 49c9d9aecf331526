package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
	"github.com/voicegate/voicegate/internal/store/spool"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

// flaky is a memory store whose metering writes and Ping fail with
// store.ErrUnavailable while down is set.
type flaky struct {
	*memory.Store
	down  atomic.Bool
	calls atomic.Int64 // metering calls that reached the backend while up
}

func (f *flaky) err() error {
	if f.down.Load() {
		return fmt.Errorf("fake: %w", store.ErrUnavailable)
	}
	f.calls.Add(1)
	return nil
}
func (f *flaky) Ping(ctx context.Context) error {
	if f.down.Load() {
		return fmt.Errorf("fake: %w", store.ErrUnavailable)
	}
	return f.Store.Ping(ctx)
}
func (f *flaky) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.Store.RecordUsage(ctx, e)
}
func (f *flaky) Charge(ctx context.Context, a []store.BudgetAccount, n int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Charge(ctx, a, n)
}
func (f *flaky) Settle(ctx context.Context, id string, n int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Settle(ctx, id, n)
}
func (f *flaky) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.AppendAudit(ctx, e)
}

func entry(sess, resp string, cost int64) store.LedgerEntry {
	return store.LedgerEntry{SessionID: sess, ResponseID: resp, User: "alice", Status: "completed",
		CostNanoUSD: cost, At: time.Unix(1_800_000_000, 0).UTC()}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		mem := memory.New()
		dir := t.TempDir()
		return func() store.Store {
			s, err := spool.New(nopClose{mem}, dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// nopClose lets several Spool handles share one memory store in the
// conformance suite, as several processes share one Redis.
type nopClose struct{ *memory.Store }

func (nopClose) Close() error { return nil }

func TestSpoolsWhileDownAndReplaysExactlyOnce(t *testing.T) {
	ctx := context.Background()
	inner := &flaky{Store: memory.New()}
	dir := t.TempDir()
	s, err := spool.New(inner, dir, spool.WithInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acct := []store.BudgetAccount{{Key: "user:alice"}}
	if _, err := s.Reserve(ctx, store.Reservation{ID: "r1", Session: "s1", Accounts: acct, Want: 100, Min: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, store.Reservation{ID: "r2", Session: "s1", Accounts: acct, Want: 10, Min: 10}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RecordUsage(ctx, entry("s1", "r0", 5)); !ok || err != nil {
		t.Fatalf("RecordUsage up = %v, %v", ok, err)
	}

	inner.down.Store(true)
	if ok, err := s.RecordUsage(ctx, entry("s1", "r1", 7)); !ok || err != nil {
		t.Fatalf("spooled RecordUsage = %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.RecordUsage(ctx, entry("s1", "r1", 7)); ok || err != nil {
		t.Fatalf("duplicate spooled RecordUsage = %v, %v; want false, nil", ok, err)
	}
	if err := s.Settle(ctx, "r1", 40); err != nil {
		t.Fatal(err)
	}
	if err := s.Charge(ctx, acct, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "disconnect", SessionID: "s1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending(); got != 5 {
		t.Fatalf("Pending = %d, want 5", got)
	}
	// The backend (a memory store, readable here) still holds r1, but its
	// Settle is spooled: a recovery job must not settle it again.
	if hs, err := s.SessionHolds(ctx, "s1"); err != nil || len(hs) != 1 || hs[0].ID != "r2" {
		t.Fatalf("SessionHolds with r1's Settle spooled = %+v, %v; want r2 only", hs, err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping passes through: want an error while down")
	}
	if err := s.Flush(ctx); err == nil {
		t.Fatal("Flush while down: want error")
	}

	inner.down.Store(false)
	// Written while the spool is non-empty: goes behind the spooled ops.
	if err := s.Charge(ctx, acct, 1); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending(); got != 6 {
		t.Fatalf("Pending = %d, want 6 (ordering behind the spool)", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending(); got != 0 {
		t.Fatalf("Pending after flush = %d", got)
	}
	es, err := s.LedgerEntries(ctx, store.LedgerFilter{SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("ledger has %d entries, want 2: %+v", len(es), es)
	}
	spent, reserved, err := s.Spent(ctx, "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if spent != 44 || reserved != 10 {
		t.Fatalf("spent, reserved = %d, %d; want 44, 10 (r2 open)", spent, reserved)
	}
	au, err := s.AuditEntries(ctx, store.AuditFilter{Kind: "disconnect"})
	if err != nil || len(au) != 1 {
		t.Fatalf("audit = %v, %v; want one entry", au, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ops.jsonl")); len(b) != 0 {
		t.Fatalf("spool file not emptied: %q", b)
	}
}

func TestReplayerGoroutineFlushes(t *testing.T) {
	ctx := context.Background()
	inner := &flaky{Store: memory.New()}
	s, err := spool.New(inner, t.TempDir(), spool.WithInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inner.down.Store(true)
	if _, err := s.RecordUsage(ctx, entry("s2", "r1", 1)); err != nil {
		t.Fatal(err)
	}
	inner.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("replayer did not flush within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	es, _ := s.LedgerEntries(ctx, store.LedgerFilter{SessionID: "s2"})
	if len(es) != 1 {
		t.Fatalf("ledger = %d entries, want 1", len(es))
	}
}

// TestSurvivesCrash: ops spooled by one process are replayed by the next,
// and an applied prefix recorded in the offset is not applied again.
func TestSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	inner := &flaky{Store: memory.New()}
	dir := t.TempDir()
	s1, err := spool.New(nopCloseFlaky{inner}, dir, spool.WithInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	inner.down.Store(true)
	acct := []store.BudgetAccount{{Key: "user:bob"}}
	for i := range 3 {
		if err := s1.Charge(ctx, acct, int64(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	s1.Close() // "crash": ops stay on disk
	// Simulate a crash after the first op was applied and recorded, plus a
	// torn half-written line at the end.
	if err := os.WriteFile(filepath.Join(dir, "applied"), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inner.down.Store(false)
	if err := inner.Store.Charge(ctx, acct, 10); err != nil { // op 0 did reach the backend
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "ops.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"charge","amo`)
	f.Close()

	s2, err := spool.New(inner, dir, spool.WithInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.Pending(); got != 2 {
		t.Fatalf("Pending after reopen = %d, want 2", got)
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	spent, _, _ := s2.Spent(ctx, "user:bob")
	if spent != 10+11+12 {
		t.Fatalf("spent = %d, want 33 (each charge exactly once)", spent)
	}
}

type nopCloseFlaky struct{ *flaky }

func (nopCloseFlaky) Close() error { return nil }

func TestNonUnavailableErrorsPassThrough(t *testing.T) {
	ctx := context.Background()
	s, err := spool.New(memory.New(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	// memory ignores ctx, so use a real validation path: nothing spooled on success.
	if _, err := s.RecordUsage(ctx2, entry("s3", "r1", 1)); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 0 {
		t.Fatal("successful write was spooled")
	}
}

func TestRedisStopRestartReplaysExactlyOnce(t *testing.T) {
	ctx := context.Background()
	url, stop, restart := redistest.Start(t)
	rs, err := redis.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spool.New(rs, t.TempDir(), spool.WithInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acct := []store.BudgetAccount{{Key: "user:carol", ExpiresAt: time.Now().Add(time.Hour)}}

	stop()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with Redis stopped: want error")
	}
	if _, err := s.SessionHolds(ctx, "sr"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("SessionHolds with Redis stopped = %v; want store.ErrUnavailable", err)
	}
	for i := range 5 {
		if ok, err := s.RecordUsage(ctx, entry("sr", fmt.Sprintf("resp_%d", i), 100)); !ok || err != nil {
			t.Fatalf("RecordUsage while down = %v, %v", ok, err)
		}
	}
	if ok, err := s.RecordUsage(ctx, entry("sr", "resp_0", 100)); ok || err != nil {
		t.Fatalf("duplicate while down = %v, %v; want false", ok, err)
	}
	if err := s.Charge(ctx, acct, 500); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "disconnect", SessionID: "sr", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending(); got != 8 {
		t.Fatalf("Pending = %d, want 8", got)
	}

	restart() // empty Redis: afterwards it holds exactly what was replayed
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := s.LedgerEntries(ctx, store.LedgerFilter{SessionID: "sr"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 {
		t.Fatalf("ledger has %d entries, want 5 (exactly once)", len(es))
	}
	spent, _, err := s.Spent(ctx, "user:carol")
	if err != nil || spent != 500 {
		t.Fatalf("spent = %d, %v; want 500", spent, err)
	}
	au, err := s.AuditEntries(ctx, store.AuditFilter{SessionID: "sr"})
	if err != nil || len(au) != 1 {
		t.Fatalf("audit = %d, %v; want 1", len(au), err)
	}
}
