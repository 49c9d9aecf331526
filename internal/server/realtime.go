package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

const subprotocolKeyPrefix = "openai-insecure-api-key."

// sessionToken returns the session token of a WebSocket request: the
// Bearer header, or the browser's subprotocol credential.
func sessionToken(r *http.Request) string {
	if t := auth.BearerToken(r); t != "" {
		return t
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), subprotocolKeyPrefix); ok {
				return t
			}
		}
	}
	return ""
}

// isBeta reports whether the client asked for the beta interface.
func isBeta(r *http.Request) bool {
	if strings.Contains(r.Header.Get("OpenAI-Beta"), "realtime=v1") {
		return true
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if strings.TrimSpace(p) == "openai-beta.realtime-v1" {
				return true
			}
		}
	}
	return false
}

// safetyID is the stable, non-reversible user id sent upstream as
// OpenAI-Safety-Identifier.
func safetyID(user string) string {
	h := sha256.Sum256([]byte("voicegate/safety-id\x00" + user))
	return hex.EncodeToString(h[:16])
}

// handleRealtime authenticates a WebSocket session and hands it to the
// relay: origin, token, session state and expiry, model, then the
// governor's admission (one live connection per token, connect rate,
// concurrency caps), held and renewed for the connection's life.
func handleRealtime(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.admit(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if s.Relay == nil {
			writeError(w, r, s.Logger, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "upstream_unavailable", Message: "No relay is configured."})
			return
		}
		holder, err := randomID(s.Rand, s.Instance+"/")
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		adm, err := s.Govern.Admit(r.Context(), sess, holder)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		ctx, stop := context.WithCancel(context.WithoutCancel(r.Context()))
		held := make(chan struct{})
		go func() { // owner: this handler; returns when stop is called below
			defer close(held)
			adm.Hold(ctx)
		}()
		defer func() {
			stop()
			<-held
		}()
		s.Relay.ServeSession(w, r, sess, isBeta(r), upstreamQuery(r.URL.Query()), safetyID(sess.User))
	})
}

// admit runs every check before the upgrade; refusals are audited with a
// short token id only.
func (s *Server) admit(r *http.Request) (*store.Session, error) {
	if err := s.throttled(r, "realtime", sessionToken(r)); err != nil {
		return nil, err
	}
	if !s.Config.OriginAllowed(r.Header.Get("Origin")) {
		return nil, s.refuse(r, "realtime", "origin", "", forbidden("origin_not_allowed", "This origin is not allowed to connect."))
	}
	raw := sessionToken(r)
	if raw == "" {
		return nil, s.refuse(r, "realtime", "missing", "", unauthorized("missing_api_key", "You didn't provide a session token (Authorization: Bearer or the openai-insecure-api-key subprotocol)."))
	}
	tok, err := token.Parse(raw)
	if err != nil || !tok.IsSession() {
		return nil, s.refuse(r, "realtime", "malformed", token.ID(raw), unauthorized("invalid_api_key", "Incorrect session token provided."))
	}
	ctx := r.Context()
	sess, err := s.Store.SessionByTokenHash(ctx, tok.Hash())
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.refuse(r, "realtime", "unknown", tok.ID(), unauthorized("invalid_api_key", "Incorrect session token provided."))
	}
	if err != nil {
		return nil, errors.Join(store.ErrUnavailable, err)
	}
	if reason, err := s.sessionRefusal(ctx, sess); err != nil {
		return nil, err
	} else if reason != "" {
		var refusal error = forbidden("session_revoked", "This session has been revoked.")
		switch reason {
		case "expired":
			refusal = unauthorized("token_expired", "This session token has expired.")
		case "ended":
			refusal = forbidden("session_ended", "This session has ended.")
		}
		return nil, s.refuse(r, "realtime", reason, tok.ID(), refusal)
	}
	q := r.URL.Query()
	if m := q.Get("model"); m != "" && m != sess.Model {
		return nil, badRequest("model_not_allowed", "model", "The model '"+store.Sanitize(m, 64)+"' does not match this session's model '"+sess.Model+"'.")
	}
	if err := checkQuery(q, sess); err != nil {
		return nil, err
	}
	return sess, nil
}

// checkQuery refuses the query parameters a client may not set: call_id
// (with the server key upstream it would attach this connection to any
// WebRTC call as its sideband), and an intent other than transcription on
// a transcription session.
func checkQuery(q url.Values, sess *store.Session) error {
	if q.Has("call_id") {
		return badRequest("unknown_parameter", "call_id", "Unknown parameter: 'call_id'. A sideband connection cannot be opened with a session token.")
	}
	if q.Has("intent") {
		var cfg struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(sess.Config, &cfg) // validated at mint
		if q.Get("intent") != "transcription" || cfg.Type != "transcription" {
			return badRequest("invalid_value", "intent", "Invalid value for 'intent': only 'transcription', on a transcription session.")
		}
	}
	return nil
}

// upstreamQuery is what the relay forwards upstream of the client's query:
// model and intent (checked by checkQuery), nothing else.
func upstreamQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"model", "intent"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// sessionRefusal reports why a session may not connect now ("" = it may).
func (s *Server) sessionRefusal(ctx context.Context, sess *store.Session) (string, error) {
	switch sess.State {
	case store.StateRevoked:
		return "revoked", nil
	case store.StateEnded:
		return "ended", nil
	}
	if !sess.RevokedAt.IsZero() {
		return "revoked", nil
	}
	// The expiry bounds the time to connect; a session that connected
	// before may reconnect until then too.
	if !s.Now().Before(sess.ExpiresAt) {
		return "expired", nil
	}
	for _, target := range userRevocationTargets(sess) {
		at, err := s.Store.UserRevokedAt(ctx, target)
		if err != nil {
			return "", errors.Join(store.ErrUnavailable, err)
		}
		if !at.IsZero() && !sess.CreatedAt.After(at) {
			return "revoked", nil
		}
	}
	if sess.AppKeyID != "" {
		k, err := s.Store.Key(ctx, sess.AppKeyID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", errors.Join(store.ErrUnavailable, err)
		}
		if err == nil && !k.RevokedAt.IsZero() {
			return "revoked", nil
		}
	}
	return "", nil
}
