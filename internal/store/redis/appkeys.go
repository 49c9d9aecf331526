package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// appKeyRecord is an app key as stored, with the hash the domain type keeps
// out of its JSON.
type appKeyRecord struct {
	*store.AppKey
	Hash string `json:"hash"`
}

// CreateKey stores a new app key; store.ErrConflict when its id or hash is
// taken. App keys never expire in Redis: revocation is explicit.
func (s *Store) CreateKey(ctx context.Context, k *store.AppKey) error {
	if k == nil || k.ID == "" {
		return errors.New("redis: create key: empty id")
	}
	raw, err := json.Marshal(appKeyRecord{AppKey: k, Hash: k.Hash})
	if err != nil {
		return fmt.Errorf("redis: create key: %w", err)
	}
	ok, err := s.c.SetNX(ctx, s.k.appKey(k.ID), raw, 0).Result()
	if err != nil {
		return unavailable("create key", err)
	}
	if !ok {
		return fmt.Errorf("redis: create key %s: %w", k.ID, store.ErrConflict)
	}
	if k.Hash != "" {
		ok, err := s.c.SetNX(ctx, s.k.appKeyByHash(k.Hash), k.ID, 0).Result()
		if err != nil || !ok {
			_ = s.c.Del(context.WithoutCancel(ctx), s.k.appKey(k.ID)).Err()
			if err != nil {
				return unavailable("create key", err)
			}
			return fmt.Errorf("redis: create key %s: hash: %w", k.ID, store.ErrConflict)
		}
	}
	if err := s.c.ZAdd(ctx, s.k.appKeysAll(), goredis.Z{Score: usec(k.CreatedAt), Member: k.ID}).Err(); err != nil {
		return unavailable("create key", err)
	}
	return nil
}

// Key returns the app key with that id or store.ErrNotFound.
func (s *Store) Key(ctx context.Context, id string) (*store.AppKey, error) {
	raw, err := s.c.Get(ctx, s.k.appKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("get key", err)
	}
	return decodeAppKey(raw)
}

// KeyByHash returns the app key whose full value hashes to hash.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*store.AppKey, error) {
	id, err := s.c.Get(ctx, s.k.appKeyByHash(hash)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: key by hash: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("get key by hash", err)
	}
	k, err := s.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Hash != hash {
		return nil, fmt.Errorf("redis: key by hash: %w", store.ErrNotFound)
	}
	return k, nil
}

func decodeAppKey(raw []byte) (*store.AppKey, error) {
	k := &store.AppKey{}
	rec := appKeyRecord{AppKey: k}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("redis: corrupt key record: %w", err)
	}
	k.Hash = rec.Hash
	return k, nil
}

// ListKeys returns every app key, oldest first, revoked ones included.
func (s *Store) ListKeys(ctx context.Context) ([]*store.AppKey, error) {
	ids, err := s.c.ZRange(ctx, s.k.appKeysAll(), 0, -1).Result()
	if err != nil {
		return nil, unavailable("list keys", err)
	}
	cmds := make([]*goredis.StringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.k.appKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, unavailable("list keys", err)
	}
	out := make([]*store.AppKey, 0, len(ids))
	for _, c := range cmds {
		raw, err := c.Bytes()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, unavailable("list keys", err)
		}
		k, err := decodeAppKey(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RevokeKey marks the key revoked at at; revoking a revoked key keeps the
// first time. store.ErrNotFound when there is no such key.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	key := s.k.appKey(id)
	txf := func(tx *goredis.Tx) error {
		raw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, goredis.Nil) {
			return fmt.Errorf("redis: revoke key %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return unavailable("revoke key", err)
		}
		k, err := decodeAppKey(raw)
		if err != nil {
			return err
		}
		if !k.RevokedAt.IsZero() {
			return nil
		}
		k.RevokedAt = at
		enc, err := json.Marshal(appKeyRecord{AppKey: k, Hash: k.Hash})
		if err != nil {
			return fmt.Errorf("redis: revoke key: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, key, enc, 0)
			return nil
		})
		return err
	}
	for range maxTxRetries {
		err := s.c.Watch(ctx, txf, key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue
		}
		return unavailable("revoke key", err)
	}
	return fmt.Errorf("%w: redis revoke key %s: too much contention", store.ErrUnavailable, id)
}
