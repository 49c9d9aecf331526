package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// sessionRecord is a session as stored: the JSON of store.Session plus the
// token hash, which the domain type keeps out of its JSON on purpose.
type sessionRecord struct {
	*store.Session
	TokenHash string `json:"token_hash"`
}

// maxTxRetries bounds optimistic-transaction retries under contention.
const maxTxRetries = 64

// CreateSession stores a new session. It fails with store.ErrConflict when
// the id or the token hash is already taken.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	if sess == nil || sess.ID == "" {
		return errors.New("redis: create session: empty id")
	}
	raw, err := json.Marshal(sessionRecord{Session: sess, TokenHash: sess.TokenHash})
	if err != nil {
		return fmt.Errorf("redis: create session: %w", err)
	}
	ttl := s.sessionTTL(sess)
	ok, err := s.c.SetNX(ctx, s.k.session(sess.ID), raw, ttl).Result()
	if err != nil {
		return unavailable("create session", err)
	}
	if !ok {
		return fmt.Errorf("redis: create session %s: %w", sess.ID, store.ErrConflict)
	}
	if sess.TokenHash != "" {
		// The session and its token index live in different slots: claim
		// the token second and undo the session if it was taken.
		ok, err := s.c.SetNX(ctx, s.k.sessionByToken(sess.TokenHash), sess.ID, ttl).Result()
		if err != nil || !ok {
			_ = s.c.Del(context.WithoutCancel(ctx), s.k.session(sess.ID)).Err()
			if err != nil {
				return unavailable("create session", err)
			}
			return fmt.Errorf("redis: create session %s: token hash: %w", sess.ID, store.ErrConflict)
		}
	}
	// Index entries of sessions that expired are removed by ListSessions
	// when it meets them; an index nobody adds to expires on its own.
	score := usec(sess.CreatedAt)
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, idx := range s.sessionIndexes(sess) {
			p.ZAdd(ctx, idx, goredis.Z{Score: score, Member: sess.ID})
			p.PExpire(ctx, idx, ttl+48*time.Hour)
		}
		return nil
	})
	if err != nil {
		return unavailable("create session", err)
	}
	return nil
}

// sessionIndexes lists the sorted sets (id scored by creation time) a
// session belongs to.
func (s *Store) sessionIndexes(sess *store.Session) []string {
	idx := []string{s.k.sessionsAll()}
	if sess.User != "" {
		idx = append(idx, s.k.sessionsOfUser(sess.User))
	}
	if sess.AppKeyID != "" {
		idx = append(idx, s.k.sessionsOfKey(sess.AppKeyID))
	}
	return idx
}

// sessionTTL keeps a session for the retention period after the later of
// its connect deadline, its end and now.
func (s *Store) sessionTTL(sess *store.Session) time.Duration {
	last := s.now()
	if sess.ExpiresAt.After(last) {
		last = sess.ExpiresAt
	}
	if sess.EndedAt.After(last) {
		last = sess.EndedAt
	}
	return s.ttlUntil(last)
}

// Session returns the session with that id or store.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	raw, err := s.c.Get(ctx, s.k.session(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: session %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("get session", err)
	}
	return decodeSession(raw)
}

// SessionByTokenHash returns the session whose token hashes to hash.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string) (*store.Session, error) {
	id, err := s.c.Get(ctx, s.k.sessionByToken(hash)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: session by token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("get session by token", err)
	}
	sess, err := s.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.TokenHash != hash {
		return nil, fmt.Errorf("redis: session by token: %w", store.ErrNotFound)
	}
	return sess, nil
}

func decodeSession(raw []byte) (*store.Session, error) {
	sess := &store.Session{}
	rec := sessionRecord{Session: sess}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("redis: corrupt session record: %w", err)
	}
	sess.TokenHash = rec.TokenHash
	return sess, nil
}

// UpdateSession applies fn to the stored session under WATCH and stores the
// result; when another writer got there first, fn runs again on the fresh
// value, so fn must not have side effects. fn's error aborts the update and
// is returned as is. The id, token hash, user and app key are the record's
// identity and index keys: changes fn makes to them are not stored.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*store.Session) error) (*store.Session, error) {
	key := s.k.session(id)
	var out *store.Session
	txf := func(tx *goredis.Tx) error {
		raw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, goredis.Nil) {
			return fmt.Errorf("redis: update session %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return unavailable("update session", err)
		}
		sess, err := decodeSession(raw)
		if err != nil {
			return err
		}
		tokenHash, user, appKey := sess.TokenHash, sess.User, sess.AppKeyID
		if err := fn(sess); err != nil {
			return userError{err}
		}
		sess.ID, sess.TokenHash, sess.User, sess.AppKeyID = id, tokenHash, user, appKey
		enc, err := json.Marshal(sessionRecord{Session: sess, TokenHash: sess.TokenHash})
		if err != nil {
			return fmt.Errorf("redis: update session: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, key, enc, s.sessionTTL(sess))
			return nil
		})
		if err != nil {
			return err
		}
		out = sess
		return nil
	}
	for range maxTxRetries {
		err := s.c.Watch(ctx, txf, key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue
		}
		var ue userError
		if errors.As(err, &ue) {
			return nil, ue.err
		}
		if err != nil {
			return nil, unavailable("update session", err)
		}
		// The token index lives in another slot, outside the transaction:
		// only its TTL follows the session's, so a failure here is harmless
		// (the index then expires a little early or late).
		if out.TokenHash != "" {
			if err := s.c.PExpire(ctx, s.k.sessionByToken(out.TokenHash), s.sessionTTL(out)).Err(); err != nil {
				s.log.Warn("redis: refresh token index ttl", "session", id, "err", err)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: redis update session %s: too much contention", store.ErrUnavailable, id)
}

// userError carries the error of a caller's callback through go-redis
// untouched, so it is not mistaken for a Redis failure.
type userError struct{ err error }

func (e userError) Error() string { return e.err.Error() }
func (e userError) Unwrap() error { return e.err }

// ListSessions returns the sessions matching f, newest first, reading the
// most selective index (user, app key, or all) from Since onwards.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	idx := s.k.sessionsAll()
	switch {
	case f.User != "":
		idx = s.k.sessionsOfUser(f.User)
	case f.AppKeyID != "":
		idx = s.k.sessionsOfKey(f.AppKeyID)
	}
	minScore := "-inf"
	if !f.Since.IsZero() {
		minScore = strconv.FormatInt(f.Since.UnixMicro(), 10)
	}
	maxScore := "+inf"
	if !f.Before.IsZero() {
		maxScore = strconv.FormatInt(f.Before.UnixMicro(), 10) // scores are µs: matchSession is exact
	}
	const page = 200
	var out []*store.Session
	for offset := int64(0); len(out) < limit; offset += page {
		ids, err := s.c.ZRevRangeByScore(ctx, idx, &goredis.ZRangeBy{
			Min: minScore, Max: maxScore, Offset: offset, Count: page,
		}).Result()
		if err != nil {
			return nil, unavailable("list sessions", err)
		}
		if len(ids) == 0 {
			break
		}
		cmds := make([]*goredis.StringCmd, len(ids))
		_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.Get(ctx, s.k.session(id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, unavailable("list sessions", err)
		}
		var gone []any
		for i, c := range cmds {
			raw, err := c.Bytes()
			if errors.Is(err, goredis.Nil) {
				gone = append(gone, ids[i]) // expired after its retention
				continue
			}
			if err != nil {
				return nil, unavailable("list sessions", err)
			}
			sess, err := decodeSession(raw)
			if err != nil {
				return nil, err
			}
			if !matchSession(sess, f) {
				continue
			}
			out = append(out, sess)
			if len(out) == limit {
				break
			}
		}
		if len(gone) > 0 {
			// Best effort: a failure only leaves the entries for next time.
			if n, err := s.c.ZRem(ctx, idx, gone...).Result(); err == nil {
				offset -= n
			}
		}
		if len(ids) < page {
			break
		}
	}
	return out, nil
}

func matchSession(sess *store.Session, f store.SessionFilter) bool {
	return (f.User == "" || sess.User == f.User) &&
		(f.AppKeyID == "" || sess.AppKeyID == f.AppKeyID) &&
		(f.State == "" || sess.State == f.State) &&
		(f.Since.IsZero() || !sess.CreatedAt.Before(f.Since)) &&
		(f.Before.IsZero() || sess.CreatedAt.Before(f.Before))
}

// RevokeUser records that the user's sessions created at or before at are
// revoked. The time only moves forward.
func (s *Store) RevokeUser(ctx context.Context, user string, at time.Time) error {
	ttl := s.ttlUntil(at.Add(24 * time.Hour))
	err := userRevokeScript.Run(ctx, s.c, []string{s.k.userRevokedAt(user)},
		strconv.FormatInt(at.UnixNano(), 10), leaseMS(ttl)).Err()
	if err != nil {
		return unavailable("revoke user", err)
	}
	return nil
}

// UserRevokedAt reports the latest revocation time of user (zero if none).
func (s *Store) UserRevokedAt(ctx context.Context, user string) (time.Time, error) {
	v, err := s.c.Get(ctx, s.k.userRevokedAt(user)).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, unavailable("user revoked at", err)
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("redis: corrupt user revocation: %w", err)
	}
	return time.Unix(0, ns).UTC(), nil
}
