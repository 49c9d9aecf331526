package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

const sessionColumns = `id, token_hash, token_id, user, tier, app_key_id, model, config, limits,
	created_at, expires_at, state, transport, started_at, ended_at, live_seconds, end_reason, revoked_at`

// sessionArgs returns sess's values in sessionColumns order.
func sessionArgs(sess *store.Session) ([]any, error) {
	limits, err := json.Marshal(sess.Limits)
	if err != nil {
		return nil, fmt.Errorf("sqlite: encode session limits: %w", err)
	}
	return []any{
		sess.ID, sess.TokenHash, sess.TokenID, sess.User, sess.Tier, sess.AppKeyID, sess.Model,
		string(sess.Config), string(limits),
		nanos(sess.CreatedAt), nanos(sess.ExpiresAt), sess.State, sess.Transport,
		nanos(sess.StartedAt), nanos(sess.EndedAt), sess.LiveSeconds, sess.EndReason, nanos(sess.RevokedAt),
	}, nil
}

// scanSession reads one row of sessionColumns.
func scanSession(row interface{ Scan(...any) error }) (*store.Session, error) {
	var (
		sess                                      store.Session
		config, limits                            string
		created, expires, started, ended, revoked int64
	)
	err := row.Scan(&sess.ID, &sess.TokenHash, &sess.TokenID, &sess.User, &sess.Tier, &sess.AppKeyID, &sess.Model,
		&config, &limits, &created, &expires, &sess.State, &sess.Transport, &started, &ended,
		&sess.LiveSeconds, &sess.EndReason, &revoked)
	if err != nil {
		return nil, err
	}
	if config != "" {
		sess.Config = json.RawMessage(config)
	}
	if err := json.Unmarshal([]byte(limits), &sess.Limits); err != nil {
		return nil, fmt.Errorf("sqlite: corrupt limits of session %s: %w", sess.ID, err)
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	sess.StartedAt, sess.EndedAt, sess.RevokedAt = fromNanos(started), fromNanos(ended), fromNanos(revoked)
	return &sess, nil
}

// CreateSession stores sess; store.ErrConflict when its id or token hash is
// taken.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	args, err := sessionArgs(sess)
	if err != nil {
		return err
	}
	return s.tx(ctx, "create session", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, insertSessionQuery, args...)
		return inserted(res, err, "create session", "session "+sess.ID)
	})
}

// Session returns the session with that id or store.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	sess, err := scanSession(s.dbQueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	return found(sess, err, "session", "session "+id)
}

// SessionByTokenHash returns the session whose token hashes to hash.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string) (*store.Session, error) {
	sess, err := scanSession(s.dbQueryRow(ctx, sessionByTokenQuery, hash))
	return found(sess, err, "session by token", "session by token")
}

// ListSessions returns the sessions matching f, newest first.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error) {
	var w where
	w.text("user = ?", f.User)
	w.text("app_key_id = ?", f.AppKeyID)
	w.text("state = ?", f.State)
	w.time("created_at >= ?", f.Since)
	w.time("created_at < ?", f.Before)
	q := `SELECT ` + sessionColumns + ` FROM sessions` + w.clause()
	limit := f.Limit
	if limit <= 0 {
		limit = defaultSessionLimit
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	return queryAll(ctx, s.db, "list sessions", scanSession, q, append(w.args, limit)...)
}

// UpdateSession applies fn to the stored session inside a BEGIN IMMEDIATE
// transaction, so concurrent updates from any handle or process serialise.
// The id and token hash are kept whatever fn does.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*store.Session) error) (*store.Session, error) {
	var out *store.Session
	err := s.tx(ctx, "update session", func(ctx context.Context, tx *sql.Tx) error {
		sess, err := scanSession(s.queryRow(ctx, tx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: update session %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return unavailable("update session", err)
		}
		tokenHash := sess.TokenHash
		if err := fn(sess); err != nil {
			return err
		}
		sess.ID, sess.TokenHash = id, tokenHash
		args, err := sessionArgs(sess)
		if err != nil {
			return err
		}
		// Skip id and token_hash (the first two columns).
		_, err = s.exec(ctx, tx, `UPDATE sessions SET token_id = ?, user = ?, tier = ?, app_key_id = ?,
			model = ?, config = ?, limits = ?, created_at = ?, expires_at = ?, state = ?, transport = ?,
			started_at = ?, ended_at = ?, live_seconds = ?, end_reason = ?, revoked_at = ? WHERE id = ?`,
			append(args[2:], id)...)
		if err != nil {
			return unavailable("update session", err)
		}
		out = sess
		return nil
	})
	return out, err
}

// RevokeUser moves the user's revocation time forward to at.
func (s *Store) RevokeUser(ctx context.Context, user string, at time.Time) error {
	return s.tx(ctx, "revoke user", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO user_revocations (user, revoked_at) VALUES (?, ?)
			ON CONFLICT (user) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at)`, user, nanos(at))
		if err != nil {
			return unavailable("revoke user", err)
		}
		return nil
	})
}

// UserRevokedAt reports the latest revocation time of user (zero if none).
func (s *Store) UserRevokedAt(ctx context.Context, user string) (time.Time, error) {
	var n int64
	err := s.dbQueryRow(ctx, userRevokedAtQuery, user).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, unavailable("user revoked at", err)
	}
	return fromNanos(n), nil
}
