package server

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

type principalKey struct{}

// principalFrom returns the principal stored by operator/adminOnly.
func principalFrom(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey{}).(auth.Principal)
	return p
}

// authenticate identifies the caller, auditing and counting refusals.
// endpoint labels the metric ("mint", "operator").
func (s *Server) authenticate(r *http.Request, endpoint string) (auth.Principal, error) {
	if err := s.throttled(r, endpoint, sessionToken(r)); err != nil {
		return auth.Principal{}, err
	}
	p, err := s.Auth.Authenticate(r)
	if err == nil {
		return p, nil
	}
	reason := auth.Reason(err)
	if reason == "store_unavailable" {
		return p, errStoreUnavailable
	}
	if reason == "login_unavailable" {
		return p, s.refuse(r, endpoint, reason, "", &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "login_unavailable",
			Message: "The gateway cannot verify your login right now. Retry shortly."})
	}
	if reason == "revoked" {
		return p, s.refuse(r, endpoint, reason, "", unauthorized("invalid_api_key", "The API key provided has been revoked."))
	}
	return p, s.refuse(r, endpoint, reason, "", unauthorized("invalid_api_key", "Incorrect API key provided. You can manage voicegate app keys with 'voicegate keys'."))
}

// refuse records a refused authentication and returns what the client
// gets: err, with a metric, a log line and an audit entry holding the
// reason, the remote address, the (bounded) path and a short token id —
// never the credential. Once the request's source or credential has failed
// too often (throttle.go), it gets 429 with Retry-After instead, counted
// but neither logged nor audited.
func (s *Server) refuse(r *http.Request, endpoint, reason, tokenID string, err error) error {
	if wait := s.throttle.fail(s.Now(), failKeys(r, sessionToken(r))); wait > 0 {
		s.metrics.authFailures.WithLabelValues(endpoint, "throttled").Inc()
		return throttledError(wait)
	}
	s.metrics.authFailures.WithLabelValues(endpoint, reason).Inc()
	remote := r.RemoteAddr
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	detail := map[string]any{"endpoint": endpoint, "reason": reason, "remote": remote, "path": boundedPath(r)}
	if tokenID != "" {
		detail["token_id"] = tokenID
	}
	s.Logger.WarnContext(r.Context(), "authentication refused", "endpoint", endpoint, "reason", reason, "remote", remote, "token_id", tokenID)
	s.audit(r.Context(), store.AuditEntry{Kind: "auth_refused", Detail: detail})
	return err
}

// refused records a refused authentication as refuse does, for callers
// that answer by themselves (they should answer refuse's 429 instead).
func (s *Server) refused(r *http.Request, endpoint, reason, tokenID string) {
	_ = s.refuse(r, endpoint, reason, tokenID, nil)
}

// audit appends e with the instance and time filled in; a failure is
// logged, not returned: the action it records already happened.
func (s *Server) audit(ctx context.Context, e store.AuditEntry) {
	e.At = s.Now().UTC()
	e.Instance = s.Instance
	if err := s.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.Logger.ErrorContext(ctx, "audit append failed", "kind", e.Kind, "session_id", e.SessionID, "err", err)
	}
}

// operator admits the admin key and app keys.
func (s *Server) operator(next http.Handler) http.Handler {
	return s.require(next, false)
}

// adminOnly admits only the admin key.
func (s *Server) adminOnly(next http.Handler) http.Handler {
	return s.require(next, true)
}

func (s *Server) require(next http.Handler, admin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, "operator")
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if p.Kind != auth.KindAdmin && (admin || p.Kind != auth.KindAppKey) {
			writeError(w, r, s.Logger, forbidden("insufficient_permissions", "This endpoint needs the admin key."))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// visible reports whether p may see the session: the admin sees all, an
// app key what it minted.
func visible(p auth.Principal, sess *store.Session) bool {
	return p.Kind == auth.KindAdmin || (p.Kind == auth.KindAppKey && sess.AppKeyID == p.AppKeyID())
}

// sessionFor loads a session the caller may see (404 otherwise, so app keys
// cannot probe other keys' session ids).
func (s *Server) sessionFor(r *http.Request, id string) (*store.Session, error) {
	sess, err := s.Store.Session(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visible(principalFrom(r.Context()), sess)) {
		return nil, notFound("No session found with id '" + id + "'.")
	}
	return sess, err
}
