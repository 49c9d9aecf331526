package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/internal/login"
)

// ErrLoginUnavailable means an end-user credential could not be checked
// (JWKS or auth webhook unreachable): fail closed with 503.
var ErrLoginUnavailable = errors.New("auth: login unavailable")

// Logins adapts internal/login authenticators to the Login hook: a bearer
// value shaped like a JWT goes to JWT when it is set; anything else
// (another bearer value, or only cookies) goes to Webhook when it is set.
// Either may be nil.
type Logins struct {
	JWT     login.Authenticator
	Webhook login.Authenticator
}

// Authenticate implements Login.
func (l Logins) Authenticate(r *http.Request) (user, tier string, err error) {
	var a login.Authenticator
	if tok := BearerToken(r); l.JWT != nil && strings.Count(tok, ".") == 2 {
		a = l.JWT
	} else if l.Webhook != nil {
		a = l.Webhook
	} else if l.JWT != nil {
		a = l.JWT
	}
	if a == nil {
		return "", "", ErrNoCredentials
	}
	id, err := a.Authenticate(r.Context(), r)
	if errors.Is(err, login.ErrUnavailable) {
		return "", "", fmt.Errorf("%w: %w", ErrLoginUnavailable, err)
	}
	if err != nil {
		return "", "", err
	}
	return id.User, id.Tier, nil
}
