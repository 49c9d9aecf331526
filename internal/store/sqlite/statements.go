package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// statements are the prepared statements of the hot paths: token and key
// lookups on every connect, the session and its audit on every mint, the
// ledger on every response, rate limits and leases on every mint and
// connect. Writes use them through the writer's transaction
// (tx.StmtContext).
type statements struct {
	sessionByToken *sql.Stmt
	insertSession  *sql.Stmt
	userRevokedAt  *sql.Stmt
	keyByHash      *sql.Stmt
	insertLedger   *sql.Stmt
	insertAudit    *sql.Stmt
	selectTAT      *sql.Stmt
	upsertTAT      *sql.Stmt
	pruneLeases    *sql.Stmt
	countLeases    *sql.Stmt
	upsertLease    *sql.Stmt
	all            []*sql.Stmt
}

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.sessionByToken, `SELECT ` + sessionColumns + ` FROM sessions WHERE token_hash = ?`},
		{&st.insertSession, `INSERT INTO sessions (` + sessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.userRevokedAt, `SELECT revoked_at FROM user_revocations WHERE user = ?`},
		{&st.keyByHash, `SELECT ` + keyColumns + ` FROM app_keys WHERE hash = ?`},
		{&st.insertLedger, insertLedger},
		{&st.insertAudit, `INSERT INTO audit (at, kind, session_id, user, app_key_id, tier, instance, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.selectTAT, `SELECT tat FROM rate_limits WHERE key = ?`},
		{&st.upsertTAT, `INSERT INTO rate_limits (key, tat) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET tat = excluded.tat`},
		{&st.pruneLeases, `DELETE FROM leases WHERE key = ? AND expires_at <= ?`},
		{&st.countLeases, `SELECT COUNT(*), COALESCE(SUM(holder = ?), 0) FROM leases WHERE key = ?`},
		{&st.upsertLease, `INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key, holder) DO UPDATE SET expires_at = excluded.expires_at`},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = stmt
		st.all = append(st.all, stmt)
	}
	return nil
}

func (st *statements) close() {
	for _, stmt := range st.all {
		stmt.Close()
	}
	st.all = nil
}
