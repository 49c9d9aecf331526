package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// rateLimited is the HTTP 429 of a governing limit.
func rateLimited(message string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded",
		Message: message, RetryAfter: max(retry, time.Second)}
}

// lease is one held concurrency slot.
type lease struct{ key, holder string }

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
			s.releaseLeases(context.WithoutCancel(ctx), held)
			return nil, errors.Join(store.ErrUnavailable, err)
		}
		if !ok {
			s.releaseLeases(context.WithoutCancel(ctx), held)
			s.limitRefused(ctx, sess, c.limit)
			return nil, rateLimited(fmt.Sprintf("Too many live sessions for %s: the limit is %d.", c.what, c.max), s.LeaseTTL)
		}
		held = append(held, lease{c.key, holder})
	}
	return held, nil
}

func (s *Server) renewLeases(ctx context.Context, ls []lease) {
	for _, l := range ls {
		if err := s.Store.RenewLease(ctx, l.key, l.holder, s.LeaseTTL); err != nil && ctx.Err() == nil {
			s.Logger.Warn("lease renewal failed", "lease", leaseKind(l.key), "err", err)
		}
	}
}

func (s *Server) releaseLeases(ctx context.Context, ls []lease) {
	for _, l := range ls {
		if err := s.Store.ReleaseLease(ctx, l.key, l.holder); err != nil {
			s.Logger.Warn("lease release failed", "lease", leaseKind(l.key), "err", err)
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
