package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/auth"
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

func handleRevokeUser(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		p := principalFrom(r.Context())
		if strings.TrimSpace(user) == "" {
			writeError(w, r, s.Logger, badRequest("invalid_value", "user", "user must not be empty."))
			return
		}
		now := s.Now().UTC()
		if p.Kind == auth.KindAppKey {
			// An app key may only end the sessions it minted for that user.
			list, err := s.Store.ListSessions(r.Context(), store.SessionFilter{User: user, AppKeyID: p.AppKeyID(), Limit: 1000})
			if err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
			n := 0
			for _, sess := range list {
				if sess.State == store.StateRevoked || sess.State == store.StateEnded {
					continue
				}
				if _, err := RevokeSession(r.Context(), s.Store, sess.ID, now); err != nil {
					writeError(w, r, s.Logger, err)
					return
				}
				s.publish(r.Context(), store.Revocation{Kind: "session", ID: sess.ID, At: now})
				n++
			}
			s.audit(r.Context(), store.AuditEntry{Kind: "revoke", User: user, AppKeyID: p.AppKeyID(),
				Detail: map[string]any{"scope": "user", "by": string(p.Kind), "sessions": n}})
			encode(w, http.StatusOK, map[string]any{"object": "voicegate.user_revocation", "user": user, "revoked_at": now, "sessions": n})
			return
		}
		if err := s.Store.RevokeUser(r.Context(), user, now); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.audit(r.Context(), store.AuditEntry{Kind: "revoke", User: user, Detail: map[string]any{"scope": "user", "by": string(p.Kind)}})
		s.publish(r.Context(), store.Revocation{Kind: "user", ID: user, At: now})
		encode(w, http.StatusOK, map[string]any{"object": "voicegate.user_revocation", "user": user, "revoked_at": now})
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

// closeRevoked closes this instance's live sessions covered by rev.
func (s *Server) closeRevoked(rev store.Revocation) int {
	var match func(*store.Session) bool
	switch rev.Kind {
	case "session":
		match = func(x *store.Session) bool { return x.ID == rev.ID }
	case "user":
		match = func(x *store.Session) bool { return x.User == rev.ID && !x.CreatedAt.After(rev.At) }
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
