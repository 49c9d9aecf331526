package server

import (
	"errors"
	"net/http"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

// SelfView is what a session token may read of its own session: the
// operator's view without the pinned configuration (its instructions are
// the backend's, not the browser's) or the minting app key, plus what is
// left of its budget and time, so a page can show them as the session
// runs.
type SelfView struct {
	*SessionView
	// RemainingBudgetUSD is the session budget less the cost so far, never
	// below zero; null when the session has no budget.
	RemainingBudgetUSD *float64 `json:"remaining_budget_usd"`
	// RemainingSeconds is max_session_seconds less the live seconds so
	// far, never below zero; null when the session has no duration limit.
	RemainingSeconds *float64 `json:"remaining_seconds"`
	// Refusal is why the token can no longer connect ("revoked",
	// "expired", "ended"), or "" while it can.
	Refusal string `json:"refusal,omitempty"`
}

// handleSelfSession serves GET /voicegate/v1/session: the session of the
// Bearer session token, in any state, so a client can show usage, cost
// and what is left while it talks, and why it ended afterwards.
func handleSelfSession(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := sessionToken(r)
		if err := s.throttled(r, "session", raw); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if raw == "" {
			s.refused(r, "session", "missing", "")
			writeError(w, r, s.Logger, unauthorized("missing_api_key", "You didn't provide a session token (Authorization: Bearer ek_vg_…)."))
			return
		}
		tok, err := token.Parse(raw)
		if err != nil || !tok.IsSession() {
			s.refused(r, "session", "malformed", token.ID(raw))
			writeError(w, r, s.Logger, unauthorized("invalid_api_key", "Incorrect session token provided."))
			return
		}
		sess, err := s.Store.SessionByTokenHash(r.Context(), tok.Hash())
		if errors.Is(err, store.ErrNotFound) {
			s.refused(r, "session", "unknown", tok.ID())
			writeError(w, r, s.Logger, unauthorized("invalid_api_key", "Incorrect session token provided."))
			return
		}
		if err != nil {
			writeError(w, r, s.Logger, errors.Join(store.ErrUnavailable, err))
			return
		}
		refusal, err := s.sessionRefusal(r.Context(), sess)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		v, err := ViewSession(r.Context(), s.Store, sess, s.isLive, s.Now())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, selfView(v, refusal))
	})
}

// selfView strips v of what only the backend and operator see and adds
// what is left.
func selfView(v *SessionView, refusal string) SelfView {
	c := *v.Session
	c.Config = nil
	c.AppKeyID = ""
	v.Session = &c
	out := SelfView{SessionView: v, Refusal: refusal}
	if b := c.Limits.BudgetNanoUSD; b > 0 {
		left := float64(max(0, b-v.CostNanoUSD)) / 1e9
		out.RemainingBudgetUSD = &left
	}
	if m := c.Limits.MaxSessionSeconds; m > 0 {
		left := max(0, float64(m)-c.LiveSeconds)
		out.RemainingSeconds = &left
	}
	return out
}
