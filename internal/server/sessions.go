package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// SessionView is a session as the operator API and CLI show it: the stored
// record plus its usage summed from the ledger, in OpenAI's field names.
type SessionView struct {
	*store.Session
	Live      bool           `json:"live"`
	Usage     realtime.Usage `json:"usage"`
	Responses int            `json:"responses"`
	// Transcriptions counts metered input audio transcriptions and
	// AudioSeconds the billed seconds of the duration-billed ones; their
	// tokens and cost are included in Usage and the cost.
	Transcriptions int            `json:"transcriptions,omitempty"`
	AudioSeconds   int64          `json:"audio_seconds,omitempty"`
	CostUSD        float64        `json:"cost_usd"`
	CostNanoUSD    int64          `json:"cost_nanousd"`
	LimitsView     map[string]any `json:"limits"`
	Object         string         `json:"object"`
}

// Wire converts the store's flat usage back to OpenAI's nested shape.
func Wire(u store.Usage) realtime.Usage {
	return realtime.Usage{
		TotalTokens:  u.TotalTokens,
		InputTokens:  u.InputTokens,
		OutputTokens: u.OutputTokens,
		InputTokenDetails: realtime.InputTokenDetails{
			TextTokens: u.InputTextTokens, AudioTokens: u.InputAudioTokens, ImageTokens: u.InputImageTokens,
			CachedTokens: u.CachedTokens,
			CachedTokensDetails: realtime.CachedTokensDetails{
				TextTokens: u.CachedTextTokens, AudioTokens: u.CachedAudioTokens, ImageTokens: u.CachedImageTokens,
			},
		},
		OutputTokenDetails: realtime.OutputTokenDetails{TextTokens: u.OutputTextTokens, AudioTokens: u.OutputAudioTokens},
	}
}

// ViewSession sums the session's ledger entries into a SessionView at now;
// its live_seconds count the current connection too. live may be nil (the
// CLI has no relay).
func ViewSession(ctx context.Context, st store.Store, sess *store.Session, live func(string) bool, now time.Time) (*SessionView, error) {
	entries, err := st.LedgerEntries(ctx, store.LedgerFilter{SessionID: sess.ID})
	if err != nil {
		return nil, fmt.Errorf("session usage: %w", err)
	}
	if sess.State == store.StateLive {
		last, err := st.AuditEntries(ctx, store.AuditFilter{SessionID: sess.ID, Kind: "connect", Newest: true, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("session connects: %w", err)
		}
		c := *sess
		c.LiveSeconds = liveSeconds(sess, last, now)
		sess = &c
	}
	var t tally
	for _, e := range entries {
		t.add(e)
	}
	v := &SessionView{Session: sess, Usage: Wire(t.usage), Responses: t.responses,
		Transcriptions: t.transcriptions, AudioSeconds: t.usage.AudioSeconds, CostNanoUSD: t.cost,
		CostUSD: float64(t.cost) / 1e9, LimitsView: publicLimits(sess.Limits), Object: "voicegate.session"}
	if live != nil {
		v.Live = live(sess.ID)
	}
	return v, nil
}

func (s *Server) isLive(id string) bool {
	return s.Relay != nil && s.Relay.IsLive(id) || s.Calls != nil && s.Calls.IsLive(id)
}

func handleGetSession(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionFor(r, r.PathValue("id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		v, err := ViewSession(r.Context(), s.Store, sess, s.isLive, s.Now())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		encode(w, http.StatusOK, v)
	})
}

func handleListSessions(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := store.SessionFilter{User: q.Get("user"), State: q.Get("state")}
		err := onlyParams(q, "user", "state", "since", "before", "limit")
		if err == nil && f.State != "" && !slices.Contains(States, f.State) {
			err = badRequest("invalid_value", "state", "state must be one of "+StatesHelp+".")
		}
		if err == nil {
			f.Limit, err = queryLimit(q, 100, 1000)
		}
		if err == nil {
			f.Since, err = ParseTime("since", q.Get("since"))
		}
		if err == nil {
			f.Before, err = ParseTime("before", q.Get("before"))
		}
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if p := principalFrom(r.Context()); p.Kind == auth.KindAppKey {
			f.AppKeyID = p.AppKeyID()
		}
		limit := f.Limit
		f.Limit++ // one more tells whether there is a next page
		list, err := s.Store.ListSessions(r.Context(), f)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		hasMore := len(list) > limit
		list = list[:min(limit, len(list))]
		out := make([]*SessionView, 0, len(list))
		for _, sess := range list {
			v, err := ViewSession(r.Context(), s.Store, sess, s.isLive, s.Now())
			if err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
			out = append(out, v)
		}
		// The next page: ?before=<created_at of the last item>.
		encode(w, http.StatusOK, map[string]any{"object": "list", "data": out, "has_more": hasMore})
	})
}

func handleRevokeSession(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionFor(r, r.PathValue("id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		sess, err = RevokeSession(r.Context(), s.Store, sess.ID, s.Now())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		p := principalFrom(r.Context())
		s.audit(r.Context(), store.AuditEntry{Kind: "revoke", SessionID: sess.ID, User: sess.User, AppKeyID: sess.AppKeyID, Tier: sess.Tier,
			Detail: map[string]any{"scope": "session", "by": string(p.Kind), "by_app_key_id": p.AppKeyID()}})
		s.publish(r.Context(), store.Revocation{Kind: "session", ID: sess.ID, At: s.Now().UTC()})
		v, err := ViewSession(r.Context(), s.Store, sess, s.isLive, s.Now())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		encode(w, http.StatusOK, v)
	})
}

// RevokeSession marks a session revoked in the store (the CLI and the API
// share it); closing live connections is the revocation bus's job.
func RevokeSession(ctx context.Context, st store.Store, id string, now time.Time) (*store.Session, error) {
	sess, err := st.UpdateSession(ctx, id, func(x *store.Session) error {
		if x.State == store.StateRevoked {
			return nil
		}
		x.State = store.StateRevoked
		x.RevokedAt = now.UTC()
		x.EndReason = "session_revoked"
		if x.EndedAt.IsZero() {
			x.EndedAt = now.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	return sess, nil
}

// handleRevokeUser revokes every session of a user created until now, on
// every instance: live ones close, reconnects are refused. Users are
// namespaced by the app key that minted for them (govern.UserKey): an app
// key revokes its own user only; the admin key revokes the bare name across
// every app and the gateway's own sessions, or, with ?app_key=<id>, that
// app's user only.
func handleRevokeUser(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		p := principalFrom(r.Context())
		q := r.URL.Query()
		if err := onlyParams(q, "app_key"); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if strings.TrimSpace(user) == "" {
			writeError(w, r, s.Logger, badRequest("invalid_value", "user", "user must not be empty."))
			return
		}
		appKey := q.Get("app_key")
		if q.Has("app_key") && appKey == "" {
			writeError(w, r, s.Logger, badRequest("invalid_value", "app_key", "app_key must not be empty."))
			return
		}
		if p.Kind == auth.KindAppKey {
			if appKey != "" && appKey != p.AppKeyID() {
				writeError(w, r, s.Logger, forbidden("insufficient_permissions", "An app key revokes only its own users."))
				return
			}
			appKey = p.AppKeyID()
		} else if appKey != "" {
			if _, err := s.Store.Key(r.Context(), appKey); errors.Is(err, store.ErrNotFound) {
				writeError(w, r, s.Logger, notFound(fmt.Sprintf("No app key '%s'.", appKey)))
				return
			} else if err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		}
		now := s.Now().UTC()
		target := govern.UserKey(appKey, user)
		if err := s.Store.RevokeUser(r.Context(), target, now); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.audit(r.Context(), store.AuditEntry{Kind: "revoke", User: user, AppKeyID: appKey,
			Detail: map[string]any{"scope": "user", "by": string(p.Kind)}})
		s.publish(r.Context(), store.Revocation{Kind: "user", ID: target, At: now})
		out := map[string]any{"object": "voicegate.user_revocation", "user": user, "revoked_at": now}
		if appKey != "" {
			out["app_key_id"] = appKey
		}
		encode(w, http.StatusOK, out)
	})
}

// publish sends a revocation on the bus, and closes matching sessions on
// this instance right away too (the bus delivery then finds nothing left).
func (s *Server) publish(ctx context.Context, rev store.Revocation) {
	s.closeRevoked(rev)
	if err := s.Store.PublishRevocation(context.WithoutCancel(ctx), rev); err != nil {
		s.Logger.ErrorContext(ctx, "publish revocation failed", "kind", rev.Kind, "err", err)
	}
}

// userRevocationTargets are the user revocations that cover sess (the
// user given to store.RevokeUser, the ID of a "user" Revocation): its bare
// user, which the admin revokes across apps, and, when an app key minted
// it, the user in that app's namespace (govern.UserKey), which that app
// revokes. closeRevoked and sessionRefusal both match by it, so a live
// session and its reconnect are judged alike.
func userRevocationTargets(sess *store.Session) []string {
	if sess.AppKeyID == "" {
		return []string{sess.User}
	}
	return []string{sess.User, govern.UserKey(sess.AppKeyID, sess.User)}
}

// closeRevoked closes this instance's live sessions covered by rev.
func (s *Server) closeRevoked(rev store.Revocation) int {
	var match func(*store.Session) bool
	switch rev.Kind {
	case "session":
		match = func(x *store.Session) bool { return x.ID == rev.ID }
	case "user":
		match = func(x *store.Session) bool {
			return !x.CreatedAt.After(rev.At) && slices.Contains(userRevocationTargets(x), rev.ID)
		}
	case "app_key":
		match = func(x *store.Session) bool { return x.AppKeyID == rev.ID }
	default:
		return 0
	}
	n := 0
	if s.Relay != nil {
		n += s.Relay.CloseSessions(match, websocket.StatusPolicyViolation, "session_revoked", "This session has been revoked.")
	}
	if s.Calls != nil {
		n += s.Calls.CloseSessions(match, websocket.StatusPolicyViolation, "session_revoked", "This session has been revoked.")
	}
	return n
}
