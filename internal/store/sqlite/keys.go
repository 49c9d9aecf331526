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

const keyColumns = `id, hash, hint, name, tiers, created_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }) (*store.AppKey, error) {
	var (
		k                store.AppKey
		tiers            string
		created, revoked int64
	)
	if err := row.Scan(&k.ID, &k.Hash, &k.Hint, &k.Name, &tiers, &created, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tiers), &k.Tiers); err != nil {
		return nil, fmt.Errorf("sqlite: corrupt tiers of key %s: %w", k.ID, err)
	}
	k.CreatedAt, k.RevokedAt = fromNanos(created), fromNanos(revoked)
	return &k, nil
}

// CreateKey stores k; store.ErrConflict when its id or hash is taken.
func (s *Store) CreateKey(ctx context.Context, k *store.AppKey) error {
	tiers, err := json.Marshal(k.Tiers)
	if err != nil {
		return fmt.Errorf("sqlite: encode tiers: %w", err)
	}
	return s.tx(ctx, "create key", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO app_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, k.ID, k.Hash, k.Hint, k.Name, string(tiers), nanos(k.CreatedAt), nanos(k.RevokedAt))
		return inserted(res, err, "create key", "key "+k.ID)
	})
}

// Key returns the app key with that id or store.ErrNotFound.
func (s *Store) Key(ctx context.Context, id string) (*store.AppKey, error) {
	k, err := scanKey(s.dbQueryRow(ctx, `SELECT `+keyColumns+` FROM app_keys WHERE id = ?`, id))
	return found(k, err, "key", "key "+id)
}

// KeyByHash returns the app key whose full value hashes to hash.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*store.AppKey, error) {
	k, err := scanKey(s.dbQueryRow(ctx, keyByHashQuery, hash))
	return found(k, err, "key by hash", "key by hash")
}

// ListKeys returns every app key, oldest first, revoked ones included.
func (s *Store) ListKeys(ctx context.Context) ([]*store.AppKey, error) {
	return queryAll(ctx, s.db, "list keys", scanKey, `SELECT `+keyColumns+` FROM app_keys ORDER BY created_at, id`)
}

// RevokeKey marks the key revoked at at; a revoked key keeps its first
// revocation time.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, "revoke key", func(ctx context.Context, tx *sql.Tx) error {
		var revoked int64
		err := s.queryRow(ctx, tx, `SELECT revoked_at FROM app_keys WHERE id = ?`, id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: revoke key %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return unavailable("revoke key", err)
		}
		if revoked != 0 {
			return nil
		}
		if _, err := s.exec(ctx, tx, `UPDATE app_keys SET revoked_at = ? WHERE id = ?`, nanos(at), id); err != nil {
			return unavailable("revoke key", err)
		}
		return nil
	})
}
