package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// The queries of the hot paths: token and key lookups on every connect,
// the session and its audit on every mint, the ledger on every response,
// rate limits and leases on every mint and connect. Open prepares them
// (hotQueries), so a mistake in one fails Open rather than a request; every
// query, these and the rest, runs through the statement cache.
const (
	sessionByTokenQuery = `SELECT ` + sessionColumns + ` FROM sessions WHERE token_hash = ?`
	insertSessionQuery  = `INSERT INTO sessions (` + sessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	userRevokedAtQuery = `SELECT revoked_at FROM user_revocations WHERE user = ?`
	keyByHashQuery     = `SELECT ` + keyColumns + ` FROM app_keys WHERE hash = ?`
	insertAuditQuery   = `INSERT INTO audit (at, kind, session_id, user, app_key_id, tier, instance, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	selectTATQuery = `SELECT tat FROM rate_limits WHERE key = ?`
	upsertTATQuery = `INSERT INTO rate_limits (key, tat) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET tat = excluded.tat`
	pruneLeasesQuery = `DELETE FROM leases WHERE key = ? AND expires_at <= ?`
	countLeasesQuery = `SELECT COUNT(*), COALESCE(SUM(holder = ?), 0) FROM leases WHERE key = ?`
	upsertLeaseQuery = `INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key, holder) DO UPDATE SET expires_at = excluded.expires_at`
)

var hotQueries = []string{
	sessionByTokenQuery, insertSessionQuery, userRevokedAtQuery, keyByHashQuery, insertLedger, insertAuditQuery,
	selectTATQuery, upsertTATQuery, pruneLeasesQuery, countLeasesQuery, upsertLeaseQuery,
}

// maxCached bounds the statement cache: every query it holds is a
// constant of this package, so the bound is never reached; it only keeps
// a future query built from data from growing the cache.
const maxCached = 256

// stmtCache prepares each distinct query once. modernc's driver compiles a
// query given as text on every call; in a write-heavy run (budget holds
// settled per response, the writer's savepoints) the SQL parser was a
// third of the gateway's CPU.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the prepared statement for query, preparing it on first use;
// nil when it cannot be cached (the cache is full, or preparing failed:
// the caller runs the query as text and meets the error there).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	st, _ := c.prepare(ctx, db, query)
	return st
}

// prepare is get with preparing's error.
func (c *stmtCache) prepare(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	if len(c.m) >= maxCached {
		return nil, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
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
