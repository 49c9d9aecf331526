package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
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
