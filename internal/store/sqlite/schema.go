package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; migration i brings the schema to version
// i+1. Never edit an applied migration: append a new one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	token_hash   TEXT NOT NULL UNIQUE,
	token_id     TEXT NOT NULL,
	user         TEXT NOT NULL,
	tier         TEXT NOT NULL,
	app_key_id   TEXT NOT NULL,
	model        TEXT NOT NULL,
	config       TEXT NOT NULL,  -- JSON, '' when none
	limits       TEXT NOT NULL,  -- JSON
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	state        TEXT NOT NULL,
	transport    TEXT NOT NULL,
	started_at   INTEGER NOT NULL,
	ended_at     INTEGER NOT NULL,
	live_seconds REAL NOT NULL,
	end_reason   TEXT NOT NULL,
	revoked_at   INTEGER NOT NULL
);
CREATE INDEX sessions_created ON sessions (created_at, id);
CREATE INDEX sessions_user ON sessions (user, created_at);
CREATE INDEX sessions_app_key ON sessions (app_key_id, created_at);
CREATE INDEX sessions_state ON sessions (state, created_at);

CREATE TABLE user_revocations (
	user       TEXT PRIMARY KEY,
	revoked_at INTEGER NOT NULL
);

CREATE TABLE app_keys (
	id         TEXT PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	hint       TEXT NOT NULL,
	name       TEXT NOT NULL,
	tiers      TEXT NOT NULL,  -- JSON array
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
);

CREATE TABLE ledger (
	session_id          TEXT NOT NULL,
	response_id         TEXT NOT NULL,
	user                TEXT NOT NULL,
	app_key_id          TEXT NOT NULL,
	tier                TEXT NOT NULL,
	model               TEXT NOT NULL,
	status              TEXT NOT NULL,
	total_tokens        INTEGER NOT NULL,
	input_tokens        INTEGER NOT NULL,
	output_tokens       INTEGER NOT NULL,
	input_text_tokens   INTEGER NOT NULL,
	input_audio_tokens  INTEGER NOT NULL,
	input_image_tokens  INTEGER NOT NULL,
	cached_tokens       INTEGER NOT NULL,
	cached_text_tokens  INTEGER NOT NULL,
	cached_audio_tokens INTEGER NOT NULL,
	cached_image_tokens INTEGER NOT NULL,
	output_text_tokens  INTEGER NOT NULL,
	output_audio_tokens INTEGER NOT NULL,
	cost_nanousd        INTEGER NOT NULL,
	at                  INTEGER NOT NULL,
	PRIMARY KEY (session_id, response_id)
);
CREATE INDEX ledger_at ON ledger (at);
CREATE INDEX ledger_user ON ledger (user, at);
CREATE INDEX ledger_app_key ON ledger (app_key_id, at);

CREATE TABLE audit (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL,
	user       TEXT NOT NULL,
	app_key_id TEXT NOT NULL,
	tier       TEXT NOT NULL,
	instance   TEXT NOT NULL,
	detail     TEXT NOT NULL  -- JSON object, '' when none
);
CREATE INDEX audit_session ON audit (session_id, seq);
CREATE INDEX audit_user ON audit (user, seq);
CREATE INDEX audit_kind ON audit (kind, seq);

CREATE TABLE rate_limits (
	key TEXT PRIMARY KEY,
	tat INTEGER NOT NULL  -- GCRA theoretical arrival time, Unix ns
) WITHOUT ROWID;

CREATE TABLE leases (
	key        TEXT NOT NULL,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (key, holder)
) WITHOUT ROWID;

-- An account's reserved amount is not stored: it is the sum of its live
-- (unexpired) holds, so a crashed process's holds lapse on their own.
CREATE TABLE budget_accounts (
	key        TEXT PRIMARY KEY,
	spent      INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0  -- end of the account's window, 0 = none
);

CREATE TABLE reservations (
	id         TEXT PRIMARY KEY,
	amount     INTEGER NOT NULL,
	expires_at INTEGER NOT NULL  -- the hold stops counting after this
);
CREATE INDEX reservations_expiry ON reservations (expires_at);

CREATE TABLE reservation_holds (
	reservation_id TEXT NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
	account_key    TEXT NOT NULL REFERENCES budget_accounts (key),
	PRIMARY KEY (reservation_id, account_key)
) WITHOUT ROWID;
CREATE INDEX reservation_holds_account ON reservation_holds (account_key);

CREATE TABLE revocations (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT NOT NULL,
	target       TEXT NOT NULL,
	at           INTEGER NOT NULL,
	published_at INTEGER NOT NULL
);
`,
	// 2: transcription entries in the ledger.
	`
ALTER TABLE ledger ADD COLUMN kind TEXT NOT NULL DEFAULT '';          -- '' = response, 'transcription'
ALTER TABLE ledger ADD COLUMN audio_seconds INTEGER NOT NULL DEFAULT 0; -- duration-billed transcription
`,
	// 3: the owning session of a reservation, so a recovery job can find
	// and settle the holds of a session whose process died. Older rows have
	// no session (and lapse within the reservation ttl anyway).
	`
ALTER TABLE reservations ADD COLUMN session TEXT NOT NULL DEFAULT '';     -- '' = no session
ALTER TABLE reservations ADD COLUMN granted_at INTEGER NOT NULL DEFAULT 0; -- Unix ns, orders a session's holds
CREATE INDEX reservations_session ON reservations (session, granted_at);
`,
}

// migrate brings the schema to the latest version. It runs in one
// BEGIN IMMEDIATE transaction, so processes opening a new file at the same
// time apply each migration once; reopening an up-to-date file changes
// nothing.
func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, "migrate", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`); err != nil {
			return unavailable("migrate", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return unavailable("migrate", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("sqlite: database schema version %d is newer than this binary's %d", current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return unavailable(fmt.Sprintf("migration %d", v), err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, v, s.now().UnixNano()); err != nil {
				return unavailable("migrate", err)
			}
		}
		return nil
	})
}

// SchemaVersion reports the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, unavailable("schema version", err)
	}
	return v, nil
}
