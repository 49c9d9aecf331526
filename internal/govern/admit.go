package govern

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// AdmitMint applies the mint rate limits of tier: per user, then per app
// key (when minted with one). A refusal is a *Refusal (rate_limit_exceeded
// with RetryAfter); a store failure wraps store.ErrUnavailable.
func (g *Governor) AdmitMint(ctx context.Context, tierName, model, user, appKeyID string) error {
	t := g.Tier(tierName)
	limits := []struct {
		key, limit, what string
		n                int
	}{
		{"rl:mint:user:" + UserKey(appKeyID, user), "mints_per_user_per_minute", "this user", t.Rates.MintsPerUserPerMinute},
		{"rl:mint:key:" + appKeyID, "mints_per_app_key_per_minute", "this app key", t.Rates.MintsPerAppKeyPerMinute},
	}
	for _, l := range limits {
		if l.n <= 0 || (l.what == "this app key" && appKeyID == "") {
			continue
		}
		res, err := g.Store.Allow(ctx, l.key, store.PerMinute(l.n))
		if err != nil {
			return errors.Join(store.ErrUnavailable, err)
		}
		if !res.Allowed {
			g.Metrics.Refused(l.limit, tierName, model)
			g.audit(ctx, &store.Session{User: user, AppKeyID: appKeyID, Tier: tierName}, "limit",
				map[string]any{"limit": l.limit, "at": "mint"})
			return rateLimited(l.limit, res.RetryAfter, "Too many sessions minted for %s: the limit is %d per minute.", l.what, l.n)
		}
	}
	return nil
}

// lease is one held concurrency slot of a live connection.
type lease struct {
	key     string
	max     int  // the cap it was acquired under, to acquire it again
	lost    bool // acquiring it again was refused: the slot was taken
	failing bool // renewals fail (the store is unreachable): logged once
}

// Admission is a session's right to be connected: the token's one live
// connection and its concurrency slots, held under one holder id. Hold
// renews them while the connection lives and releases them at the end.
type Admission struct {
	g      *Governor
	rec    *store.Session
	holder string
	leases []lease
}

// Admit checks that rec may connect now and takes its slots: the token's
// one-live-connection lease (a second connection is refused with
// session_in_use), the per-user connect rate, and the concurrency caps per
// user (the session's narrowed MaxConcurrent, else the tier's), per app key
// and per instance. holder must be unique per connection. Refusals are
// *Refusal; nothing is held on refusal. Store failures wrap
// store.ErrUnavailable (fail closed).
func (g *Governor) Admit(ctx context.Context, rec *store.Session, holder string) (*Admission, error) {
	a := &Admission{g: g, rec: rec, holder: holder}
	ok, err := g.Store.AcquireLease(ctx, "tok:"+rec.ID, holder, 1, g.leaseTTL())
	if err != nil {
		return nil, errors.Join(store.ErrUnavailable, err)
	}
	if !ok {
		return nil, &Refusal{Code: CodeSessionInUse, Limit: "session_in_use", Message: "This session token already has a live connection."}
	}
	a.leases = append(a.leases, lease{key: "tok:" + rec.ID, max: 1})
	t := g.Tier(rec.Tier)
	if n := t.Rates.ConnectsPerUserPerMinute; n > 0 && rec.User != "" {
		res, err := g.Store.Allow(ctx, "rl:connect:user:"+UserKey(rec.AppKeyID, rec.User), store.PerMinute(n))
		if err != nil {
			a.release(ctx)
			return nil, errors.Join(store.ErrUnavailable, err)
		}
		if !res.Allowed {
			a.release(ctx)
			g.refusedAtConnect(ctx, rec, "connects_per_user_per_minute")
			return nil, rateLimited("connects_per_user_per_minute", res.RetryAfter,
				"Too many connections for this user: the limit is %d per minute.", n)
		}
	}
	perUser := t.Concurrency.PerUser
	if rec.Limits.MaxConcurrent > 0 {
		perUser = rec.Limits.MaxConcurrent
	}
	caps := []struct {
		key, limit, what string
		max              int
		skip             bool
	}{
		{"user:" + UserKey(rec.AppKeyID, rec.User), "concurrency_per_user", "this user", perUser, rec.User == ""},
		{"key:" + rec.AppKeyID, "concurrency_per_app_key", "this app key", t.Concurrency.PerAppKey, rec.AppKeyID == ""},
		{"instance:" + g.Instance, "concurrency_per_instance", "this gateway instance", t.Concurrency.PerInstance, false},
	}
	for _, c := range caps {
		if c.max <= 0 || c.skip {
			continue
		}
		ok, err := g.Store.AcquireLease(ctx, c.key, holder, c.max, g.leaseTTL())
		if err != nil {
			a.release(ctx)
			return nil, errors.Join(store.ErrUnavailable, err)
		}
		if !ok {
			a.release(ctx)
			g.refusedAtConnect(ctx, rec, c.limit)
			return nil, rateLimited(c.limit, g.leaseTTL(), "Too many live sessions for %s: the limit is %d.", c.what, c.max)
		}
		a.leases = append(a.leases, lease{key: c.key, max: c.max})
	}
	return a, nil
}

func (g *Governor) refusedAtConnect(ctx context.Context, rec *store.Session, limit string) {
	g.Metrics.Refused(limit, rec.Tier, rec.Model)
	g.audit(ctx, rec, "limit", map[string]any{"limit": limit, "at": "connect"})
}

// Hold renews the admission's leases every third of the lease TTL until
// ctx is done, then releases them. A lease the store lost (it expired
// while the store was unreachable, or Redis restarted empty) is acquired
// again, and the session record is re-created if it is missing too.
func (a *Admission) Hold(ctx context.Context) {
	defer a.release(context.WithoutCancel(ctx))
	t := time.NewTicker(a.g.leaseTTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.renew(ctx) {
				a.g.restoreRecord(ctx, a.rec)
			}
		}
	}
}

// renew renews every lease; missing reports that the store had lost one.
// If a lost slot was taken meanwhile the session keeps running (a live
// call is not cut because the store lost its state): the loss is logged
// and audited once, and acquiring is retried at every renewal.
func (a *Admission) renew(ctx context.Context) (missing bool) {
	g, log := a.g, a.g.logger()
	for i := range a.leases {
		l := &a.leases[i]
		err := g.Store.RenewLease(ctx, l.key, a.holder, g.leaseTTL())
		if ctx.Err() != nil {
			continue
		}
		if err == nil {
			if l.failing {
				l.failing = false
				log.Info("lease renewed again", "session_id", a.rec.ID, "lease", leaseKind(l.key))
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			level := slog.LevelDebug
			if !l.failing {
				l.failing, level = true, slog.LevelWarn
			}
			log.Log(ctx, level, "lease renewal failed", "session_id", a.rec.ID, "lease", leaseKind(l.key), "err", err)
			continue
		}
		l.failing = false
		missing = true
		ok, err := g.Store.AcquireLease(ctx, l.key, a.holder, l.max, g.leaseTTL())
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("lease re-acquire failed", "session_id", a.rec.ID, "lease", leaseKind(l.key), "err", err)
			}
		case ok:
			log.Info("lease missing from the store: acquired again", "session_id", a.rec.ID, "lease", leaseKind(l.key), "was_lost", l.lost)
			l.lost = false
		case !l.lost:
			l.lost = true
			log.Warn("lease missing from the store and its slot is taken: the session continues over the cap",
				"session_id", a.rec.ID, "lease", leaseKind(l.key), "max", l.max)
			g.audit(ctx, a.rec, "limit", map[string]any{"limit": "lease_lost", "lease": leaseKind(l.key), "max": l.max, "at": "renew"})
		}
	}
	return missing
}

func (a *Admission) release(ctx context.Context) {
	for _, l := range a.leases {
		if err := a.g.Store.ReleaseLease(ctx, l.key, a.holder); err != nil {
			a.g.logger().Warn("lease release failed", "session_id", a.rec.ID, "lease", leaseKind(l.key), "err", err)
		}
	}
	a.leases = nil
}

// restoreRecord creates the record of a live session again when the store
// lost it (an empty Redis restart, noticed by its missing leases), so the
// session can be listed and revoked by id again.
func (g *Governor) restoreRecord(ctx context.Context, sess *store.Session) {
	if _, err := g.Store.Session(ctx, sess.ID); !errors.Is(err, store.ErrNotFound) {
		return
	}
	rec := *sess
	rec.State = store.StateLive
	if rec.Transport == "" {
		rec.Transport = "websocket"
	}
	if rec.StartedAt.IsZero() {
		rec.StartedAt = g.now()
	}
	switch err := g.Store.CreateSession(ctx, &rec); {
	case err == nil:
		g.logger().Warn("session record missing from the store: re-created from the live connection", "session_id", sess.ID)
	case !errors.Is(err, store.ErrConflict) && ctx.Err() == nil:
		g.logger().Warn("re-creating a missing session record failed", "session_id", sess.ID, "err", err)
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
