package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

const (
	defaultSessionLimit = 100
	defaultAuditLimit   = 1000
)

func cloneSession(s *store.Session) *store.Session {
	c := *s
	c.Config = slices.Clone(s.Config)
	return &c
}

func cloneKey(k *store.AppKey) *store.AppKey {
	c := *k
	c.Tiers = slices.Clone(k.Tiers)
	return &c
}

func cloneAudit(e store.AuditEntry) store.AuditEntry {
	e.Detail = maps.Clone(e.Detail)
	return e
}

// CreateSession stores a copy of sess; store.ErrConflict when its id or
// token hash is taken.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.ID]; ok {
		return fmt.Errorf("memory: session %s: %w", sess.ID, store.ErrConflict)
	}
	if _, ok := s.byToken[sess.TokenHash]; ok {
		return fmt.Errorf("memory: session token: %w", store.ErrConflict)
	}
	s.sessions[sess.ID] = cloneSession(sess)
	s.byToken[sess.TokenHash] = sess.ID
	return nil
}

// Session returns a copy of the session with that id or store.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("memory: session %s: %w", id, store.ErrNotFound)
	}
	return cloneSession(sess), nil
}

// SessionByTokenHash returns the session whose token hashes to hash.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string) (*store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byToken[hash]
	if !ok {
		return nil, fmt.Errorf("memory: session by token: %w", store.ErrNotFound)
	}
	return cloneSession(s.sessions[id]), nil
}

// ListSessions returns the sessions matching f, newest first.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Session
	for _, sess := range s.sessions {
		if (f.User == "" || sess.User == f.User) &&
			(f.AppKeyID == "" || sess.AppKeyID == f.AppKeyID) &&
			(f.State == "" || sess.State == f.State) &&
			(f.Since.IsZero() || !sess.CreatedAt.Before(f.Since)) &&
			(f.Before.IsZero() || sess.CreatedAt.Before(f.Before)) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *store.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	limit := f.Limit
	if limit <= 0 {
		limit = defaultSessionLimit
	}
	out = out[:min(limit, len(out))]
	for i, sess := range out {
		out[i] = cloneSession(sess)
	}
	return out, nil
}

// UpdateSession applies fn to a copy of the session under the store's lock
// and stores the result unless fn fails. The id and token hash are kept.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*store.Session) error) (*store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("memory: update session %s: %w", id, store.ErrNotFound)
	}
	next := cloneSession(cur)
	if err := fn(next); err != nil {
		return nil, err
	}
	next.ID, next.TokenHash = cur.ID, cur.TokenHash
	s.sessions[id] = next
	return cloneSession(next), nil
}

// RevokeUser moves the user's revocation time forward to at.
func (s *Store) RevokeUser(ctx context.Context, user string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.After(s.userRevoked[user]) {
		s.userRevoked[user] = at
	}
	return nil
}

// UserRevokedAt reports the latest revocation time of user (zero if none).
func (s *Store) UserRevokedAt(ctx context.Context, user string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userRevoked[user], nil
}

// CreateKey stores a copy of k; store.ErrConflict when its id or hash is taken.
func (s *Store) CreateKey(ctx context.Context, k *store.AppKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return fmt.Errorf("memory: key %s: %w", k.ID, store.ErrConflict)
	}
	if _, ok := s.keyByHash[k.Hash]; ok {
		return fmt.Errorf("memory: key hash: %w", store.ErrConflict)
	}
	s.keys[k.ID] = cloneKey(k)
	s.keyByHash[k.Hash] = k.ID
	return nil
}

// Key returns the app key with that id or store.ErrNotFound.
func (s *Store) Key(ctx context.Context, id string) (*store.AppKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, fmt.Errorf("memory: key %s: %w", id, store.ErrNotFound)
	}
	return cloneKey(k), nil
}

// KeyByHash returns the app key whose full value hashes to hash.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*store.AppKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.keyByHash[hash]
	if !ok {
		return nil, fmt.Errorf("memory: key by hash: %w", store.ErrNotFound)
	}
	return cloneKey(s.keys[id]), nil
}

// ListKeys returns every app key, oldest first, revoked ones included.
func (s *Store) ListKeys(ctx context.Context) ([]*store.AppKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*store.AppKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	slices.SortFunc(out, func(a, b *store.AppKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeKey marks the key revoked at at; a revoked key keeps its first
// revocation time.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("memory: revoke key %s: %w", id, store.ErrNotFound)
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = at
	}
	return nil
}

// RecordUsage stores e unless its (session, response) pair is present.
func (s *Store) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ledgerKey{e.SessionID, e.ResponseID}
	if _, ok := s.ledgerSeen[k]; ok {
		return false, nil
	}
	s.ledgerSeen[k] = struct{}{}
	s.ledger = append(s.ledger, e)
	return true, nil
}

// LedgerEntries returns the entries matching f, oldest first.
func (s *Store) LedgerEntries(ctx context.Context, f store.LedgerFilter) ([]store.LedgerEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.LedgerEntry
	for _, e := range s.ledger {
		if (f.SessionID == "" || e.SessionID == f.SessionID) &&
			(f.User == "" || e.User == f.User) &&
			(f.AppKeyID == "" || e.AppKeyID == f.AppKeyID) &&
			(f.Since.IsZero() || !e.At.Before(f.Since)) &&
			(f.Until.IsZero() || e.At.Before(f.Until)) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b store.LedgerEntry) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.ResponseID, b.ResponseID))
	})
	return out, nil
}

// AppendAudit appends e, bounded (store.AuditEntry.Bounded), with the next
// sequence number; a zero At is set to the store's clock.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	e = e.Bounded()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditSeq++
	e.Seq = s.auditSeq
	if e.At.IsZero() {
		e.At = s.now()
	}
	s.audit = append(s.audit, cloneAudit(e))
	return nil
}

// AuditEntries returns the entries matching f in sequence order (reversed
// when f.Newest).
func (s *Store) AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	var out []store.AuditEntry
	for i := range s.audit {
		if len(out) == limit {
			break
		}
		e := s.audit[i]
		if f.Newest {
			e = s.audit[len(s.audit)-1-i]
		}
		if e.Seq > f.AfterSeq && (f.BeforeSeq <= 0 || e.Seq < f.BeforeSeq) &&
			(f.Kind == "" || e.Kind == f.Kind) &&
			(f.SessionID == "" || e.SessionID == f.SessionID) &&
			(f.User == "" || e.User == f.User) &&
			(f.AppKeyID == "" || e.AppKeyID == f.AppKeyID) &&
			(f.Since.IsZero() || !e.At.Before(f.Since)) &&
			(f.Until.IsZero() || e.At.Before(f.Until)) {
			out = append(out, cloneAudit(e))
		}
	}
	return out, nil
}
