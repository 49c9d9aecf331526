// Package auth decides who is calling the mint and operator endpoints: the
// bootstrap admin key, an app key ("vgk_…"), or an end user signed in with
// the app's own login (a pluggable Login hook built in internal/login).
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

// Kind is the kind of caller.
type Kind string

// Kinds of principals.
const (
	KindAdmin  Kind = "admin"
	KindAppKey Kind = "app_key"
	KindUser   Kind = "user"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind   Kind
	AppKey *store.AppKey // set for KindAppKey
	User   string        // set for KindUser
	Tier   string        // tier of a user login ("" = default)
}

// AppKeyID returns the app key id, or "" for other kinds.
func (p Principal) AppKeyID() string {
	if p.AppKey == nil {
		return ""
	}
	return p.AppKey.ID
}

// Errors of Authenticate; Reason maps them to the audit/metric reason.
var (
	ErrNoCredentials = errors.New("auth: no credentials")
	ErrInvalid       = errors.New("auth: invalid credentials")
	ErrRevoked       = errors.New("auth: credentials revoked")
)

// Reason returns a short, non-secret reason label for an auth error.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return "missing"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, token.ErrMalformed):
		return "malformed"
	case errors.Is(err, store.ErrUnavailable):
		return "store_unavailable"
	case errors.Is(err, ErrLoginUnavailable):
		return "login_unavailable"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return "error"
}

// Login authenticates an end user from the request (JWT, JWKS, webhook).
type Login interface {
	Authenticate(r *http.Request) (user, tier string, err error)
}

// Authenticator resolves a request's credentials to a Principal.
type Authenticator struct {
	// AdminKey is the bootstrap credential; empty disables admin access.
	AdminKey config.Secret
	// Keys looks app keys up by hash.
	Keys store.Keys
	// Login, when non-nil, authenticates bearer values that are neither the
	// admin key nor an app key (and requests without Authorization, e.g.
	// cookie sessions checked by a webhook).
	Login Login
}

// BearerToken returns the credential of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Authenticate identifies the caller of r. The admin key is compared in
// constant time; app keys are checked by checksum, then by hash lookup and
// revocation.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	cred := BearerToken(r)
	if cred == "" {
		if a.Login != nil {
			return a.login(r)
		}
		return Principal{}, ErrNoCredentials
	}
	if a.AdminKey != "" && token.Equal(cred, a.AdminKey.Reveal()) {
		return Principal{Kind: KindAdmin}, nil
	}
	if strings.HasPrefix(cred, token.AppKeyPrefix) {
		return a.appKey(r.Context(), cred)
	}
	if a.Login != nil {
		return a.login(r)
	}
	return Principal{}, ErrInvalid
}

func (a *Authenticator) appKey(ctx context.Context, cred string) (Principal, error) {
	tok, err := token.Parse(cred)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	k, err := a.Keys.KeyByHash(ctx, tok.Hash())
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalid
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: look up app key: %w", err)
	}
	if !k.RevokedAt.IsZero() {
		return Principal{}, ErrRevoked
	}
	return Principal{Kind: KindAppKey, AppKey: k}, nil
}

func (a *Authenticator) login(r *http.Request) (Principal, error) {
	user, tier, err := a.Login.Authenticate(r)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: login: %w", ErrInvalid, err)
	}
	if user == "" {
		return Principal{}, fmt.Errorf("%w: login returned no user", ErrInvalid)
	}
	return Principal{Kind: KindUser, User: user, Tier: tier}, nil
}
