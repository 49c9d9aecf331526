package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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

// maxCached bounds the statement cache: every query the store writes is a
// constant of this package, so the bound is never reached; it only keeps
// a future query built from data from growing the cache.
const maxCached = 256

// stmtCache prepares each distinct query once (writes, and the reads of
// the hot paths). modernc's driver
// compiles a query given as text on every call; in a write-heavy run
// (budget holds settled per response, the writer's savepoints) the SQL
// parser was a third of the gateway's CPU.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the prepared statement for query, preparing it on first use;
// nil when it cannot be cached (the cache is full, or preparing failed:
// the caller runs the query as text and meets the error there).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m) >= maxCached {
		return nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// exec runs query in tx through its prepared statement.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.cache.get(ctx, s.db, query); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// dbQueryRow runs a read query through its prepared statement, outside
// the writer (any pooled connection).
func (s *Store) dbQueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.cache.get(ctx, s.db, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

// dbQuery is dbQueryRow for many rows.
func (s *Store) dbQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.cache.get(ctx, s.db, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, query, args...)
}

// dbQuerier runs accountTotals' read outside the writer, through the
// statement cache.
type dbQuerier struct{ s *Store }

func (q dbQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.s.dbQueryRow(ctx, query, args...)
}

// queryRow runs query in tx through its prepared statement.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.cache.get(ctx, s.db, query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
