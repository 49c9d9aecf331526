package server

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/login"
	"github.com/voicegate/voicegate/internal/login/logintest"
	"github.com/voicegate/voicegate/internal/store"
)

const (
	testIssuer   = "https://id.example"
	testAudience = "voicegate"
)

// userClaims is a valid token body for user sub in tier "pro", valid for
// an hour from now.
func userClaims(t *testing.T, sub string, now time.Time) jwt.Token {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Issuer(testIssuer).Audience([]string{testAudience}).
		IssuedAt(now).Expiration(now.Add(time.Hour)).Claim("tier", "pro").Build()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signWith signs a user token with an IdP key (its kid goes in the header).
func signWith(t *testing.T, k logintest.Key, sub string, now time.Time) string {
	t.Helper()
	return k.Sign(t, userClaims(t, sub, now))
}

// rsaPublicForms are the byte forms of an RSA public key an attacker might
// try as an HMAC secret: PEM and DER, PKIX and PKCS#1, and the JWK JSON.
func rsaPublicForms(t *testing.T, k logintest.Key) map[string][]byte {
	t.Helper()
	var pub rsa.PublicKey
	if err := jwk.Export(k.Pub, &pub); err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&pub)
	jwkJSON, _ := json.Marshal(k.Pub)
	return map[string][]byte{
		"pkix pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"pkcs1 pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"pkix der":  pkix,
		"pkcs1 der": pkcs1,
		"jwk json":  jwkJSON,
	}
}

// hsToken builds an HS256 JWT with the given header kid (omitted when
// empty), keyed with key.
func hsToken(t *testing.T, kid string, key []byte, now time.Time) string {
	t.Helper()
	hdr := map[string]any{"alg": "HS256", "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	claims := map[string]any{"sub": "mallory", "iss": testIssuer, "aud": testAudience, "tier": "pro",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	return logintest.RawToken(t, hdr, claims, logintest.HS256(key))
}

// newJWKSEnv is the server with JWT login against p's JWKS URL (and the
// HS256 secret when hsSecret is set), on clock now.
func newJWKSEnv(t *testing.T, p *logintest.IDP, hsSecret []byte, now *clock) *env {
	t.Helper()
	e := newEnv(t, func(c *config.Config) { c.Tiers["pro"] = config.Tier{MaxSessionSeconds: 600} })
	j, err := login.NewJWT(login.JWTConfig{JWKSURL: p.URL, HS256Secret: hsSecret, Issuer: testIssuer, Audience: testAudience,
		TierClaim: "tier", Now: now.Now, RefreshMinInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Auth.Login = auth.Logins{JWT: j}
	return e
}

// mintAs mints with bearer and returns the status, the error code and the
// minted user.
func (e *env) mintAs(bearer string) (int, string, string) {
	e.t.Helper()
	status, out := e.do("POST", "/v1/realtime/client_secrets", bearer, map[string]any{})
	code, _ := errOf(out)
	user := ""
	if vg, ok := out["voicegate"].(map[string]any); ok {
		user, _ = vg["user"].(string)
	}
	return status, code, user
}

func (e *env) sessionCount() int {
	e.t.Helper()
	ss, err := e.st.ListSessions(context.Background(), store.SessionFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ss)
}

// TestMintWithJWKS: an RS256 user token verified against a JWKS URL mints
// for its subject and tier; the key set is fetched once and cached; HS256
// tokens whose HMAC key is the RSA public key (PEM, DER, JWK) and unsigned
// tokens are refused 401 without a session.
func TestMintWithJWKS(t *testing.T) {
	now := &clock{t: time.Now().Truncate(time.Second)}
	r1 := logintest.NewKey(t, "rsa", "r1")
	p := logintest.NewIDP(t, r1)
	e := newJWKSEnv(t, p, nil, now)

	status, out := e.do("POST", "/v1/realtime/client_secrets", signWith(t, r1, "hana", now.Now()), map[string]any{})
	if status != 200 {
		t.Fatalf("rs256: %d %v", status, out)
	}
	if vg := out["voicegate"].(map[string]any); vg["user"] != "hana" || vg["tier"] != "pro" {
		t.Errorf("minted for %v/%v", vg["user"], vg["tier"])
	}
	if status, code, _ := e.mintAs(signWith(t, r1, "hana", now.Now())); status != 200 || p.Fetches() != 1 {
		t.Fatalf("second mint: %d %s, fetches %d (want 1: cached)", status, code, p.Fetches())
	}

	for form, key := range rsaPublicForms(t, r1) {
		for _, kid := range []string{"r1", ""} {
			if status, code, _ := e.mintAs(hsToken(t, kid, key, now.Now())); status != 401 || code != "invalid_api_key" {
				t.Errorf("HS256 keyed with the RSA public key (%s, kid %q): %d %s", form, kid, status, code)
			}
		}
	}
	unsigned := signHS256(t, "none", map[string]any{"sub": "mallory", "iss": testIssuer, "aud": testAudience,
		"exp": now.Now().Add(time.Hour).Unix()}, "")
	if status, code, _ := e.mintAs(unsigned); status != 401 || code != "invalid_api_key" {
		t.Errorf("alg none: %d %s", status, code)
	}
	if n := e.sessionCount(); n != 2 {
		t.Errorf("sessions = %d, want the 2 valid mints", n)
	}
}

// TestMintWithJWTSecretAndJWKS: with both an HS256 secret and a JWKS, an
// HS256 token signed with the secret mints, but an HS256 token keyed with
// the RSA public key, or naming the RSA key's kid, is refused.
func TestMintWithJWTSecretAndJWKS(t *testing.T) {
	now := &clock{t: time.Now().Truncate(time.Second)}
	r1 := logintest.NewKey(t, "rsa", "r1")
	p := logintest.NewIDP(t, r1)
	e := newJWKSEnv(t, p, []byte(jwtSecret), now)

	if status, code, user := e.mintAs(hsToken(t, "", []byte(jwtSecret), now.Now())); status != 200 || user != "mallory" {
		t.Fatalf("hs256 with the secret: %d %s", status, code)
	}
	if status, code, user := e.mintAs(signWith(t, r1, "hana", now.Now())); status != 200 || user != "hana" {
		t.Fatalf("rs256: %d %s", status, code)
	}
	for form, key := range rsaPublicForms(t, r1) {
		if status, code, _ := e.mintAs(hsToken(t, "r1", key, now.Now())); status != 401 || code != "invalid_api_key" {
			t.Errorf("HS256 keyed with the RSA public key (%s): %d %s", form, status, code)
		}
	}
	if status, code, _ := e.mintAs(hsToken(t, "r1", []byte(jwtSecret), now.Now())); status != 401 || code != "invalid_api_key" {
		t.Errorf("HS256 token naming the RSA key's kid: %d %s", status, code)
	}
}

// TestMintJWKSRotation: after the IdP rotates its key, a token with the
// new kid mints once the refetch on an unknown kid is allowed (at most one
// per RefreshMinInterval, here a minute); the retired key is refused; a
// stream of unknown kids does not hammer the IdP.
func TestMintJWKSRotation(t *testing.T) {
	now := &clock{t: time.Now().Truncate(time.Second)}
	r1, e2 := logintest.NewKey(t, "rsa", "r1"), logintest.NewKey(t, "ec", "e2")
	p := logintest.NewIDP(t, r1)
	e := newJWKSEnv(t, p, nil, now)

	if status, code, _ := e.mintAs(signWith(t, r1, "hana", now.Now())); status != 200 {
		t.Fatalf("r1: %d %s", status, code)
	}
	p.Publish(t, e2)
	// Within a minute of the last fetch an unknown kid is not refetched.
	if status, code, _ := e.mintAs(signWith(t, e2, "hana", now.Now())); status != 401 || code != "invalid_api_key" || p.Fetches() != 1 {
		t.Fatalf("new kid inside the refresh interval: %d %s, fetches %d (want 401, 1)", status, code, p.Fetches())
	}
	now.Add(61 * time.Second)
	if status, code, user := e.mintAs(signWith(t, e2, "hana", now.Now())); status != 200 || user != "hana" || p.Fetches() != 2 {
		t.Fatalf("new kid after rotation: %d %s, fetches %d (want 200, 2)", status, code, p.Fetches())
	}
	if status, _, _ := e.mintAs(signWith(t, r1, "hana", now.Now())); status != 401 {
		t.Errorf("retired key still mints: %d", status)
	}
	for i := range 5 {
		bogus := logintest.NewKey(t, "ec", "bogus")
		if status, _, _ := e.mintAs(signWith(t, bogus, "mallory", now.Now())); status != 401 {
			t.Fatalf("bogus kid %d: %d", i, status)
		}
	}
	if got := p.Fetches(); got != 2 {
		t.Errorf("fetches = %d after unknown kids, want 2 (rate-limited)", got)
	}
	// The limit is per interval, not forever.
	now.Add(61 * time.Second)
	if status, _, _ := e.mintAs(signWith(t, logintest.NewKey(t, "ec", "bogus"), "mallory", now.Now())); status != 401 || p.Fetches() != 3 {
		t.Errorf("unknown kid after the interval: %d, fetches %d (want 401, 3)", status, p.Fetches())
	}
}

// TestMintJWKSUnreachable: when the JWKS cannot be fetched the mint fails
// closed with 503 login_unavailable.
func TestMintJWKSUnreachable(t *testing.T) {
	now := &clock{t: time.Now().Truncate(time.Second)}
	r1 := logintest.NewKey(t, "ec", "r1")
	p := logintest.NewIDP(t, r1)
	p.Close()
	e := newJWKSEnv(t, p, nil, now)
	if status, code, _ := e.mintAs(signWith(t, r1, "hana", now.Now())); status != 503 || code != "login_unavailable" {
		t.Errorf("jwks down: %d %s", status, code)
	}
	if n := e.sessionCount(); n != 0 {
		t.Errorf("sessions = %d", n)
	}
}

// TestMintWebhookFailsClosed: an unreachable webhook and one that does not
// answer in time both refuse the mint with 503 login_unavailable, whatever
// credential the caller sent; nothing is minted, never as anonymous.
func TestMintWebhookFailsClosed(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	release := make(chan struct{})
	var calls atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)

	for _, tt := range []struct {
		name, url string
		timeout   time.Duration
	}{
		{"unreachable", closedURL, 2 * time.Second},
		{"timeout", slow.URL, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w, err := login.NewWebhook(login.WebhookConfig{URL: tt.url, Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			e.srv.Auth.Login = auth.Logins{Webhook: w}
			for _, hdr := range [][]string{{"Cookie", "sid=good"}, {"Authorization", "Bearer some-session-token"}} {
				start := time.Now()
				status, out := e.do("POST", "/v1/realtime/client_secrets", "", map[string]any{"user": "anonymous"}, hdr...)
				if code, _ := errOf(out); status != 503 || code != "login_unavailable" {
					t.Errorf("%s: %d %v", hdr[0], status, out)
				}
				if d := time.Since(start); d > tt.timeout+2*time.Second {
					t.Errorf("%s: refusal took %v", hdr[0], d)
				}
			}
			if n := e.sessionCount(); n != 0 {
				t.Errorf("sessions = %d, want none", n)
			}
			refused, _ := e.st.AuditEntries(context.Background(), store.AuditFilter{Kind: "auth_refused"})
			if len(refused) != 2 || refused[0].Detail["reason"] != "login_unavailable" {
				t.Errorf("audit %+v", refused)
			}
		})
	}
	if calls.Load() != 2 {
		t.Errorf("slow webhook calls = %d, want 2 (refusals are not cached)", calls.Load())
	}
}
