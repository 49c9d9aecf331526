// Package login authenticates end users who mint voicegate session tokens for
// themselves: a JWT verified against an HS256 secret or a JWKS, or an auth
// webhook that vouches for a cookie session.
//
// Both authenticators fail closed: a request is accepted only when its
// credential was positively verified. Errors wrap ErrUnauthenticated (the
// credential is missing or wrong: answer 401) or ErrUnavailable (the key set
// or webhook could not be reached: answer 503). Neither error ever contains
// the token, a cookie or a secret.
package login

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

var (
	// ErrUnauthenticated means the caller did not prove who they are.
	ErrUnauthenticated = errors.New("login: unauthenticated")
	// ErrUnavailable means the credential could not be checked because a
	// dependency (JWKS endpoint, auth webhook) failed; no session may start.
	ErrUnavailable = errors.New("login: unavailable")
)

// Identity is an authenticated end user. Tier is "" when the credential
// names no tier; the caller then applies its default tier.
type Identity struct {
	User string `json:"user"`
	Tier string `json:"tier"`
}

// Authenticator turns an HTTP request into an Identity.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Identity, error)
}

// unauthenticated wraps ErrUnauthenticated with a reason safe to log.
func unauthenticated(reason string) error {
	return &reasonError{base: ErrUnauthenticated, reason: reason}
}

type reasonError struct {
	base   error
	reason string
	cause  error
}

func (e *reasonError) Error() string {
	if e.cause != nil {
		return e.base.Error() + ": " + e.reason + ": " + e.cause.Error()
	}
	return e.base.Error() + ": " + e.reason
}

func (e *reasonError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.base, e.cause}
	}
	return []error{e.base}
}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
