package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// TestMigrateLedgerKind upgrades a version-1 database holding a response
// entry: the entry reads back as a response (empty kind, no audio seconds)
// and transcription entries can be recorded beside it.
func TestMigrateLedgerKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_version (version, applied_at) VALUES (1, 0)`,
		`INSERT INTO ledger VALUES ('vgs_1', 'resp_1', 'alice', 'key_a', 'default', 'gpt-realtime', 'completed',
			30, 20, 10, 5, 15, 0, 0, 0, 0, 0, 4, 6, 1234, 1000)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	raw.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) || v < 2 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
	tr := store.LedgerEntry{SessionID: "vgs_1", ResponseID: store.TranscriptionResponseID("item_1"),
		Kind: store.LedgerTranscription, Model: "whisper-1", Status: "completed",
		Usage: store.Usage{AudioSeconds: 3}, CostNanoUSD: 300_000, At: time.Unix(0, 2000)}
	if ok, err := s.RecordUsage(ctx, tr); err != nil || !ok {
		t.Fatalf("RecordUsage = %v, %v", ok, err)
	}
	got, err := s.LedgerEntries(ctx, store.LedgerFilter{SessionID: "vgs_1"})
	if err != nil || len(got) != 2 {
		t.Fatalf("LedgerEntries = %d entries, %v; want 2", len(got), err)
	}
	if e := got[0]; e.Kind != "" || e.Usage.AudioSeconds != 0 || e.Usage.OutputAudioTokens != 6 || e.CostNanoUSD != 1234 {
		t.Errorf("migrated response entry = %+v", e)
	}
	if e := got[1]; e.Kind != store.LedgerTranscription || e.Usage.AudioSeconds != 3 || e.Model != "whisper-1" {
		t.Errorf("transcription entry = %+v", e)
	}
}

// TestMigrateReservationSession upgrades a version-2 database holding an
// open reservation: it still holds and settles, belongs to no session, and
// reservations made after the upgrade are listed by session.
func TestMigrateReservationSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "v2.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	far := time.Now().Add(time.Hour).UnixNano()
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		migrations[0],
		migrations[1],
		`INSERT INTO schema_version (version, applied_at) VALUES (1, 0), (2, 0)`,
		`INSERT INTO budget_accounts (key, spent, expires_at) VALUES ('session:vgs_1', 0, 0)`,
		fmt.Sprintf(`INSERT INTO reservations (id, amount, expires_at) VALUES ('vgs_1:1', 40, %d)`, far),
		`INSERT INTO reservation_holds (reservation_id, account_key) VALUES ('vgs_1:1', 'session:vgs_1')`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	raw.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) || v < 3 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
	if _, reserved, err := s.Spent(ctx, "session:vgs_1"); err != nil || reserved != 40 {
		t.Fatalf("reserved after the upgrade = %d, %v; want 40", reserved, err)
	}
	if hs, err := s.SessionHolds(ctx, "vgs_1"); err != nil || len(hs) != 0 {
		t.Fatalf("SessionHolds of a pre-upgrade reservation = %+v, %v; want none (no session recorded)", hs, err)
	}
	acct := []store.BudgetAccount{{Key: "session:vgs_1", LimitNano: 100}}
	if r, err := s.Reserve(ctx, store.Reservation{ID: "vgs_1:2", Session: "vgs_1", Accounts: acct, Want: 60, Min: 1}); err != nil || r.Granted != 60 {
		t.Fatalf("Reserve = %+v, %v; want 60 granted", r, err)
	}
	want := []store.Hold{{ID: "vgs_1:2", Amount: 60, Accounts: []string{"session:vgs_1"}}}
	if hs, err := s.SessionHolds(ctx, "vgs_1"); err != nil || !reflect.DeepEqual(hs, want) {
		t.Fatalf("SessionHolds = %+v, %v; want %+v", hs, err, want)
	}
	if err := s.Settle(ctx, "vgs_1:1", 30); err != nil {
		t.Fatal(err)
	}
	if spent, reserved, err := s.Spent(ctx, "session:vgs_1"); err != nil || spent != 30 || reserved != 60 {
		t.Errorf("Spent after settling the old reservation = %d, %d, %v; want 30, 60", spent, reserved, err)
	}
}
