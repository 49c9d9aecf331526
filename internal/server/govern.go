package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// rateLimited is the HTTP 429 of a governing limit.
func rateLimited(message string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded",
		Message: message, RetryAfter: max(retry, time.Second)}
}

// lease is one held concurrency slot of a live connection.
type lease struct {
	key, holder string
	max         int  // the cap it was acquired under, to acquire it again
	lost        bool // acquiring it again was refused: the slot was taken
	failing     bool // renewals fail (the store is unreachable): logged once
}

// limitRefused counts and audits a refusal by limit.
func (s *Server) limitRefused(ctx context.Context, sess *store.Session, limit string) {
	if s.LimitRefused != nil {
		s.LimitRefused(limit, sess.Tier, sess.Model)
	}
	s.audit(ctx, store.AuditEntry{Kind: "limit", SessionID: sess.ID, User: sess.User, AppKeyID: sess.AppKeyID, Tier: sess.Tier,
		Detail: map[string]any{"limit": limit, "at": "connect"}})
}

// governConnect applies the connect-time limits of sess's tier: the
// per-user connect rate, then the concurrency caps per user (the session's
// narrowed MaxConcurrent, else the tier's), per app key and per instance,
// each a lease under holder. It returns the leases taken (the caller renews
// and releases them) or a 429 with Retry-After; nothing is held on refusal.
func (s *Server) governConnect(ctx context.Context, sess *store.Session, holder string) ([]lease, error) {
	if s.Tier == nil {
		return nil, nil
	}
	t := s.Tier(sess.Tier)
	if n := t.Rates.ConnectsPerUserPerMinute; n > 0 && sess.User != "" {
		res, err := s.Store.Allow(ctx, "rl:connect:user:"+sess.User, store.PerMinute(n))
		if err != nil {
			return nil, errors.Join(store.ErrUnavailable, err)
		}
		if !res.Allowed {
			s.limitRefused(ctx, sess, "connects_per_user_per_minute")
			return nil, rateLimited(fmt.Sprintf("Too many connections for this user: the limit is %d per minute.", n), res.RetryAfter)
		}
	}
	perUser := t.Concurrency.PerUser
	if sess.Limits.MaxConcurrent > 0 {
		perUser = sess.Limits.MaxConcurrent
	}
	caps := []struct {
		key, limit, what string
		max              int
	}{
		{"user:" + sess.User, "concurrency_per_user", "this user", perUser},
		{"key:" + sess.AppKeyID, "concurrency_per_app_key", "this app key", t.Concurrency.PerAppKey},
		{"instance:" + s.Instance, "concurrency_per_instance", "this gateway instance", t.Concurrency.PerInstance},
	}
	var held []lease
	for _, c := range caps {
		if c.max <= 0 || (c.what == "this user" && sess.User == "") || (c.what == "this app key" && sess.AppKeyID == "") {
			continue
		}
		ok, err := s.Store.AcquireLease(ctx, c.key, holder, c.max, s.LeaseTTL)
		if err != nil {
			s.releaseLeases(context.WithoutCancel(ctx), sess.ID, held)
			return nil, errors.Join(store.ErrUnavailable, err)
		}
		if !ok {
			s.releaseLeases(context.WithoutCancel(ctx), sess.ID, held)
			s.limitRefused(ctx, sess, c.limit)
			return nil, rateLimited(fmt.Sprintf("Too many live sessions for %s: the limit is %d.", c.what, c.max), s.LeaseTTL)
		}
		held = append(held, lease{key: c.key, holder: holder, max: c.max})
	}
	return held, nil
}

// renewLeases renews the leases of the live session sess. A lease the
// store no longer has (it expired while the store was unreachable, or
// Redis restarted empty) is acquired again for the same holder and cap, so
// the caps hold again. If its slot was taken meanwhile the session keeps
// running (a live call is not cut because the store lost its state): the
// loss is logged and audited once, and acquiring is retried at every
// renewal until it succeeds or the session ends. missing reports that the
// store had lost a lease.
func (s *Server) renewLeases(ctx context.Context, sess *store.Session, ls []lease) (missing bool) {
	for i := range ls {
		l := &ls[i]
		err := s.Store.RenewLease(ctx, l.key, l.holder, s.LeaseTTL)
		if ctx.Err() != nil {
			continue
		}
		if err == nil {
			if l.failing {
				l.failing = false
				s.Logger.Info("lease renewed again", "session_id", sess.ID, "lease", leaseKind(l.key))
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			// Every third of the TTL while the store is down: warn once
			// per outage, not at every tick.
			level := slog.LevelDebug
			if !l.failing {
				l.failing, level = true, slog.LevelWarn
			}
			s.Logger.Log(ctx, level, "lease renewal failed", "session_id", sess.ID, "lease", leaseKind(l.key), "err", err)
			continue
		}
		l.failing = false
		missing = true
		ok, err := s.Store.AcquireLease(ctx, l.key, l.holder, l.max, s.LeaseTTL)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.Logger.Warn("lease re-acquire failed", "session_id", sess.ID, "lease", leaseKind(l.key), "err", err)
			}
		case ok:
			s.Logger.Info("lease missing from the store: acquired again", "session_id", sess.ID, "lease", leaseKind(l.key), "was_lost", l.lost)
			l.lost = false
		case !l.lost:
			l.lost = true
			s.Logger.Warn("lease missing from the store and its slot is taken: the session continues over the cap",
				"session_id", sess.ID, "lease", leaseKind(l.key), "max", l.max)
			s.audit(ctx, store.AuditEntry{Kind: "limit", SessionID: sess.ID, User: sess.User, AppKeyID: sess.AppKeyID, Tier: sess.Tier,
				Detail: map[string]any{"limit": "lease_lost", "lease": leaseKind(l.key), "max": l.max, "at": "renew"}})
		}
	}
	return missing
}

// restoreRecord creates the record of the live session sess again when the
// store lost it (an empty Redis restart, noticed by its missing leases),
// so the session can be listed and revoked by id again.
func (s *Server) restoreRecord(ctx context.Context, sess *store.Session) {
	if _, err := s.Store.Session(ctx, sess.ID); !errors.Is(err, store.ErrNotFound) {
		return
	}
	rec := *sess
	rec.State = store.StateLive
	if rec.Transport == "" {
		rec.Transport = "websocket"
	}
	if rec.StartedAt.IsZero() {
		rec.StartedAt = s.Now()
	}
	switch err := s.Store.CreateSession(ctx, &rec); {
	case err == nil:
		s.Logger.Warn("session record missing from the store: re-created from the live connection", "session_id", sess.ID)
	case !errors.Is(err, store.ErrConflict) && ctx.Err() == nil:
		s.Logger.Warn("re-creating a missing session record failed", "session_id", sess.ID, "err", err)
	}
}

func (s *Server) releaseLeases(ctx context.Context, sessionID string, ls []lease) {
	for _, l := range ls {
		if err := s.Store.ReleaseLease(ctx, l.key, l.holder); err != nil {
			s.Logger.Warn("lease release failed", "session_id", sessionID, "lease", leaseKind(l.key), "err", err)
		}
	}
}

// leaseKind is the non-identifying prefix of a lease key, for logs.
func leaseKind(key string) string {
	for i := range len(key) {
		if key[i] == ':' {
			return key[:i]
		}
	}
	return key
}

// governMint applies the mint rate limits of the tier: per user, then per
// app key (when minted with one). Refusals are 429 with Retry-After.
func (s *Server) governMint(ctx context.Context, tierName, model, user, appKeyID string) error {
	if s.Tier == nil {
		return nil
	}
	t := s.Tier(tierName)
	limits := []struct {
		key, limit, what string
		n                int
	}{
		{"rl:mint:user:" + user, "mints_per_user_per_minute", "this user", t.Rates.MintsPerUserPerMinute},
		{"rl:mint:key:" + appKeyID, "mints_per_app_key_per_minute", "this app key", t.Rates.MintsPerAppKeyPerMinute},
	}
	for _, l := range limits {
		if l.n <= 0 || (l.what == "this app key" && appKeyID == "") {
			continue
		}
		res, err := s.Store.Allow(ctx, l.key, store.PerMinute(l.n))
		if err != nil {
			return errors.Join(store.ErrUnavailable, err)
		}
		if !res.Allowed {
			if s.LimitRefused != nil {
				s.LimitRefused(l.limit, tierName, model)
			}
			s.audit(ctx, store.AuditEntry{Kind: "limit", User: user, AppKeyID: appKeyID, Tier: tierName,
				Detail: map[string]any{"limit": l.limit, "at": "mint"}})
			return rateLimited(fmt.Sprintf("Too many sessions minted for %s: the limit is %d per minute.", l.what, l.n), res.RetryAfter)
		}
	}
	return nil
}
