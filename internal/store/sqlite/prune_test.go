package sqlite_test

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// TestPrune: sessions, user revocations and budget accounts past the
// retention go; what still matters, the ledger and the audit trail stay.
func TestPrune(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const retention = 24 * time.Hour
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithNow(clock),
		sqlite.WithRetention(retention), sqlite.WithPruneInterval(0))
	defer s.Close()

	mk := func(id, state string, started, ended time.Time) {
		t.Helper()
		c := clock()
		sess := &store.Session{ID: id, TokenHash: "h_" + id, TokenID: "t_" + id, User: "u", Tier: "default", Model: "gpt-realtime",
			CreatedAt: c, ExpiresAt: c.Add(10 * time.Minute), State: state, StartedAt: started, EndedAt: ended}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	t0 := clock()
	mk("vgs_minted", store.StateMinted, time.Time{}, time.Time{})
	mk("vgs_ended", store.StateEnded, t0, t0.Add(time.Minute))
	mk("vgs_crashed", store.StateLive, t0, time.Time{}) // left live by a dead process
	if _, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "vgs_ended", ResponseID: "resp_1", User: "u", CostNanoUSD: 5, At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "mint", SessionID: "vgs_ended", User: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUser(ctx, "mallory", t0); err != nil {
		t.Fatal(err)
	}
	acct := []store.BudgetAccount{{Key: "user:day:u", LimitNano: 100, ExpiresAt: t0.Add(time.Hour)}}
	if err := s.Charge(ctx, acct, 7); err != nil {
		t.Fatal(err)
	}

	// Within the retention nothing goes.
	advance(retention - time.Minute)
	if st, err := s.Prune(ctx); err != nil || st != (sqlite.PruneStats{}) {
		t.Fatalf("Prune within retention = %+v, %v; want nothing removed", st, err)
	}
	advance(2 * time.Hour)
	mk("vgs_fresh", store.StateMinted, time.Time{}, time.Time{}) // minted now: kept
	mk("vgs_live", store.StateLive, clock(), time.Time{})        // live now: kept
	st, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sqlite.PruneStats{Sessions: 3, UserRevocations: 1, BudgetAccounts: 1}); st != want {
		t.Errorf("Prune = %+v, want %+v", st, want)
	}
	for _, id := range []string{"vgs_minted", "vgs_ended", "vgs_crashed"} {
		if _, err := s.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Session(%s) after prune: %v, want not found", id, err)
		}
	}
	for _, id := range []string{"vgs_fresh", "vgs_live"} {
		if _, err := s.Session(ctx, id); err != nil {
			t.Errorf("Session(%s) after prune: %v", id, err)
		}
	}
	if at, err := s.UserRevokedAt(ctx, "mallory"); err != nil || !at.IsZero() {
		t.Errorf("UserRevokedAt after prune = %v, %v", at, err)
	}
	if e, err := s.LedgerEntries(ctx, store.LedgerFilter{}); err != nil || len(e) != 1 {
		t.Errorf("ledger after prune = %d entries, %v; the ledger is never pruned", len(e), err)
	}
	if a, err := s.AuditEntries(ctx, store.AuditFilter{}); err != nil || len(a) != 1 {
		t.Errorf("audit after prune = %d entries, %v; a mint is never pruned", len(a), err)
	}
	if again, err := s.Prune(ctx); err != nil || again != (sqlite.PruneStats{}) {
		t.Errorf("second Prune = %+v, %v; want nothing", again, err)
	}
}

// TestPruneKeepsHeldAccounts: a budget account with a live hold survives
// past its window, so the settlement still finds it.
func TestPruneKeepsHeldAccounts(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithNow(clock), sqlite.WithPruneInterval(0),
		sqlite.WithReservationTTL(72*time.Hour))
	defer s.Close()
	acct := []store.BudgetAccount{{Key: "session:vgs_1", LimitNano: 100, ExpiresAt: now.Add(time.Minute)}}
	if res, err := s.Reserve(ctx, store.Reservation{ID: "vgs_1/r1", Accounts: acct, Want: 10, Min: 1}); err != nil || res.Granted != 10 {
		t.Fatalf("Reserve = %+v, %v", res, err)
	}
	mu.Lock()
	now = now.Add(48 * time.Hour)
	mu.Unlock()
	if st, err := s.Prune(ctx); err != nil || st.BudgetAccounts != 0 {
		t.Fatalf("Prune = %+v, %v; want the held account kept", st, err)
	}
	if err := s.Settle(ctx, "vgs_1/r1", 4); err != nil {
		t.Fatal(err)
	}
	if spent, _, err := s.Spent(ctx, "session:vgs_1"); err != nil || spent != 4 {
		t.Errorf("Spent after settle = %d, %v; want 4", spent, err)
	}
}

// TestPruneAudit: audit records past the audit retention go, except mints,
// ends, revocations and keys created, which are kept forever.
func TestPruneAudit(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithNow(clock), sqlite.WithPruneInterval(0),
		sqlite.WithAuditRetention(7*24*time.Hour))
	defer s.Close()
	old := []string{"mint", "connect", "refusal", "refusal_summary", "limit", "auth_refused", "session_update", "disconnect", "revoke", "key_create"}
	for _, k := range old {
		if err := s.AppendAudit(ctx, store.AuditEntry{Kind: k, SessionID: "vgs_old"}); err != nil {
			t.Fatal(err)
		}
	}
	advance(8 * 24 * time.Hour)
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "refusal", SessionID: "vgs_new"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Prune(ctx)
	if err != nil || st.Audit != 6 {
		t.Fatalf("Prune = %+v, %v; want 6 audit records removed", st, err)
	}
	left, err := s.AuditEntries(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range left {
		kinds = append(kinds, e.Kind+"/"+e.SessionID)
	}
	want := []string{"mint/vgs_old", "disconnect/vgs_old", "revoke/vgs_old", "key_create/vgs_old", "refusal/vgs_new"}
	if !slices.Equal(kinds, want) {
		t.Errorf("audit after prune = %v, want %v", kinds, want)
	}
}

// TestPruneKeepsRecentSessionsWithoutDeadlines: a session created inside the
// retention is kept whatever its other times say. A revoked record that
// carries no expiry, end or revocation time (zero) was deleted by the prune
// every Open runs at start, racing the caller that had just written it.
func TestPruneKeepsRecentSessionsWithoutDeadlines(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithPruneInterval(0))
	defer s.Close()
	now := time.Now().UTC()
	if err := s.CreateSession(ctx, &store.Session{ID: "vgs_bare", TokenHash: "h", CreatedAt: now, State: store.StateRevoked}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Prune(ctx); err != nil || st.Sessions != 0 {
		t.Fatalf("Prune = %+v, %v; want the fresh session kept", st, err)
	}
	if _, err := s.Session(ctx, "vgs_bare"); err != nil {
		t.Fatalf("session pruned: %v", err)
	}
}
