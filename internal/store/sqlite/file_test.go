package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	s := openFile(t, path)
	created := time.Now().UTC().Truncate(time.Second)
	sess := &store.Session{ID: "vgs_1", TokenHash: "h1", User: "alice", Config: []byte(`{"model":"gpt-realtime"}`),
		CreatedAt: created, ExpiresAt: created.Add(time.Minute), State: store.StateMinted}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, &store.AppKey{ID: "key_1", Hash: "kh1", Tiers: []string{"pro"}, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "vgs_1", ResponseID: "resp_1", CostNanoUSD: 42, At: created}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{At: created, Kind: "mint", SessionID: "vgs_1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Charge(ctx, []store.BudgetAccount{{Key: "user:day:alice"}}, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openFile(t, path)
	defer s.Close()
	got, err := s.Session(ctx, "vgs_1")
	if err != nil || got.User != "alice" || !got.CreatedAt.Equal(created) || string(got.Config) != `{"model":"gpt-realtime"}` {
		t.Errorf("session after reopen = %+v, %v", got, err)
	}
	if k, err := s.KeyByHash(ctx, "kh1"); err != nil || k.ID != "key_1" || len(k.Tiers) != 1 {
		t.Errorf("key after reopen = %+v, %v", k, err)
	}
	if ok, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "vgs_1", ResponseID: "resp_1"}); err != nil || ok {
		t.Errorf("ledger entry recorded again after reopen: %v, %v", ok, err)
	}
	if a, err := s.AuditEntries(ctx, store.AuditFilter{}); err != nil || len(a) != 1 || a[0].Seq != 1 {
		t.Errorf("audit after reopen = %+v, %v", a, err)
	}
	if spent, _, err := s.Spent(ctx, "user:day:alice"); err != nil || spent != 7 {
		t.Errorf("spent after reopen = %d, %v", spent, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	// Several handles opening a new file at once: each migration runs once.
	var wg sync.WaitGroup
	stores := make([]*sqlite.Store, 4)
	for i := range stores {
		wg.Go(func() {
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Errorf("concurrent Open %d: %v", i, err)
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for i, s := range stores {
		if s == nil {
			t.Fatalf("store %d did not open", i)
		}
	}
	want, err := stores[0].SchemaVersion(ctx)
	if err != nil || want < 1 {
		t.Fatalf("SchemaVersion = %d, %v", want, err)
	}
	for _, s := range stores {
		s.Close()
	}
	for range 2 {
		s := openFile(t, path)
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != want {
			t.Errorf("SchemaVersion after reopen = %d, %v; want %d", v, err, want)
		}
		var rows int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil || rows != want {
			t.Errorf("schema_version has %d rows, want %d (one per migration)", rows, want)
		}
		var mode string
		if err := s.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		var fk int
		if err := s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
		}
		s.Close()
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	s := openFile(t, path)
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer binary")
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestTwoOpensSeeEachOther(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	a, b := openFile(t, path), openFile(t, path)
	defer a.Close()
	defer b.Close()
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := a.SubscribeRevocations(sub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := b.CreateSession(ctx, &store.Session{ID: "vgs_1", TokenHash: "h", CreatedAt: now, State: store.StateLive}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateSession(ctx, "vgs_1", func(s *store.Session) error { s.State = store.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Session(ctx, "vgs_1"); err != nil || got.State != store.StateRevoked {
		t.Errorf("b sees %+v, %v after a's update", got, err)
	}
	if err := b.PublishRevocation(ctx, store.Revocation{Kind: "session", ID: "vgs_1", At: now}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.ID != "vgs_1" {
			t.Errorf("received %+v", r)
		}
	case <-time.After(time.Second):
		t.Fatal("revocation published on b not received on a")
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "vg.db"))
	ch, err := s.SubscribeRevocations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("subscription channel delivered after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping after Close: err = %v, want ErrUnavailable", err)
	}
}

// TestFileHoldsNoSecrets stores what the gateway stores for a token and an
// app key and checks the database files never contain the plaintext secret.
func TestFileHoldsNoSecrets(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openFile(t, filepath.Join(dir, "vg.db"))
	token := "ek_vg_" + "s3cr3t-token-value-0123456789abcdef"
	appKey := "vgk_" + "s3cr3t-app-key-0123456789abcdef"
	sum := func(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }
	now := time.Now().UTC()
	if err := s.CreateSession(ctx, &store.Session{ID: "vgs_1", TokenHash: sum(token), TokenID: "tok_ab12", CreatedAt: now, State: store.StateMinted}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, &store.AppKey{ID: "key_1", Hash: sum(appKey), Hint: "vgk_…cdef", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "mint", SessionID: "vgs_1", Detail: map[string]any{"token_id": "tok_ab12"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByTokenHash(ctx, sum(token)); err != nil {
		t.Fatal(err)
	}
	// Read the files while open (WAL not yet checkpointed) and after close.
	check := func(when string) {
		files, _ := filepath.Glob(filepath.Join(dir, "vg.db*"))
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		for _, secret := range []string{token, appKey, "s3cr3t"} {
			if bytes.Contains(all, []byte(secret)) {
				t.Errorf("%s: database files contain %q", when, secret)
			}
		}
		if !bytes.Contains(all, []byte(sum(token))) {
			t.Errorf("%s: token hash not found in the files: the check reads the wrong files", when)
		}
	}
	check("open")
	s.Close()
	check("closed")
}
