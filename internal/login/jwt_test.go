package login

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/voicegate/voicegate/internal/login/logintest"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

type claims struct {
	sub, iss, aud, tier string
	exp, nbf            time.Time
	noExp               bool
}

func goodClaims() claims {
	return claims{sub: "alice", iss: "https://idp.example", aud: "voicegate", tier: "pro", exp: t0.Add(time.Hour)}
}

func build(t *testing.T, c claims) jwt.Token {
	t.Helper()
	b := jwt.NewBuilder().Subject(c.sub).Issuer(c.iss).Audience([]string{c.aud}).IssuedAt(t0.Add(-time.Minute))
	if !c.noExp {
		b = b.Expiration(c.exp)
	}
	if !c.nbf.IsZero() {
		b = b.NotBefore(c.nbf)
	}
	if c.tier != "" {
		b = b.Claim("plan", c.tier)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sign(t *testing.T, c claims, k logintest.Key) string {
	t.Helper()
	return k.Sign(t, build(t, c))
}

func signHS(t *testing.T, c claims, secret []byte) string {
	t.Helper()
	out, err := jwt.Sign(build(t, c), jwt.WithKey(jwa.HS256(), secret))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rawToken assembles a compact JWS of c by hand, for algorithms the library
// would refuse to produce.
func rawToken(t *testing.T, header map[string]any, c claims, sig func(signingInput string) []byte) string {
	t.Helper()
	return logintest.RawToken(t, header, build(t, c), sig)
}

func request(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/realtime/client_secrets", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

var secret = []byte("0123456789abcdef0123456789abcdef-hs256-test")

func TestJWTAcceptsValidTokens(t *testing.T) {
	rsaK, ecK, edK := logintest.NewKey(t, "rsa", "r1"), logintest.NewKey(t, "ec", "e1"), logintest.NewKey(t, "ed", "d1")
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, logintest.JWKS(t, rsaK, ecK, edK), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewJWT(JWTConfig{HS256Secret: secret, JWKSFile: file, Issuer: "https://idp.example", Audience: "voicegate", TierClaim: "plan", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"HS256": signHS(t, goodClaims(), secret),
		"RS256": sign(t, goodClaims(), rsaK),
		"ES256": sign(t, goodClaims(), ecK),
		"EdDSA": sign(t, goodClaims(), edK),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := a.Authenticate(context.Background(), request(tok))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if want := (Identity{User: "alice", Tier: "pro"}); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestJWTRefusals(t *testing.T) {
	rsaK, ecK := logintest.NewKey(t, "rsa", "r1"), logintest.NewKey(t, "ec", "e1")
	other := logintest.NewKey(t, "rsa", "r1") // same kid, different key: a forged signature
	idp := logintest.NewIDP(t, rsaK, ecK)

	rsaPubDER := func() []byte {
		var raw rsa.PublicKey
		if err := jwk.Export(rsaK.Pub, &raw); err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&raw)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}()
	rsaPubJSON, _ := json.Marshal(rsaK.Pub)

	withClaims := func(f func(*claims)) claims { c := goodClaims(); f(&c); return c }
	tests := []struct {
		name   string
		tok    string
		reason string
	}{
		{"expired", sign(t, withClaims(func(c *claims) { c.exp = t0.Add(-time.Minute) }), rsaK), "token expired"},
		{"not yet valid", sign(t, withClaims(func(c *claims) { c.nbf = t0.Add(time.Minute) }), rsaK), "token not yet valid"},
		{"no exp", sign(t, withClaims(func(c *claims) { c.noExp = true }), rsaK), "missing required claim"},
		{"no sub", sign(t, withClaims(func(c *claims) { c.sub = "" }), rsaK), ""},
		{"wrong audience", sign(t, withClaims(func(c *claims) { c.aud = "someone-else" }), rsaK), "wrong audience"},
		{"wrong issuer", sign(t, withClaims(func(c *claims) { c.iss = "https://evil.example" }), rsaK), "wrong issuer"},
		{"bad signature", sign(t, goodClaims(), other), "invalid token"},
		{"tampered payload", func() string {
			tok := sign(t, goodClaims(), rsaK)
			p := strings.Split(tok, ".")
			c := goodClaims()
			c.sub = "mallory"
			b, _ := json.Marshal(build(t, c))
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + p[2]
		}(), "invalid token"},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": "r1"}, goodClaims(), func(string) []byte { return nil }), "unsigned token refused"},
		{"alg None", rawToken(t, map[string]any{"alg": "None"}, goodClaims(), func(string) []byte { return nil }), "unsigned token refused"},
		{"HS256 keyed with RSA public DER", rawToken(t, map[string]any{"alg": "HS256", "kid": "r1"}, goodClaims(), logintest.HS256(rsaPubDER)), "algorithm HS256 not accepted"},
		{"HS256 keyed with RSA JWK", rawToken(t, map[string]any{"alg": "HS256", "kid": "r1"}, goodClaims(), logintest.HS256(rsaPubJSON)), "algorithm HS256 not accepted"},
		{"RS key asked for ES256", rawToken(t, map[string]any{"alg": "ES256", "kid": "r1"}, goodClaims(), func(string) []byte { return make([]byte, 64) }), "does not match"},
		{"HS384", rawToken(t, map[string]any{"alg": "HS384", "kid": "r1"}, goodClaims(), func(string) []byte { return make([]byte, 48) }), "does not match"},
		{"unknown kid", sign(t, goodClaims(), logintest.NewKey(t, "rsa", "nope")), "unknown key id"},
		{"garbage", "not.a.jwt", "malformed"},
		{"two parts", "abc.def", "malformed"},
		{"missing", "", "missing bearer token"},
	}
	a, err := NewJWT(JWTConfig{JWKSURL: idp.URL, Issuer: "https://idp.example", Audience: "voicegate", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Authenticate(context.Background(), request(tt.tok))
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("got %+v, %v; want ErrUnauthenticated", got, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not say %q", err, tt.reason)
			}
			if tt.tok != "" && strings.Contains(err.Error(), tt.tok) {
				t.Fatalf("error leaks the token: %q", err)
			}
		})
	}
}

// With both a secret and a JWKS, an HS256 token keyed with the RSA public
// key must still fail: HS256 is checked only against the configured secret.
func TestJWTNoConfusionWithSecretAndJWKS(t *testing.T) {
	rsaK := logintest.NewKey(t, "rsa", "r1")
	file := filepath.Join(t.TempDir(), "jwks.json")
	set := logintest.JWKS(t, rsaK)
	os.WriteFile(file, set, 0o600)
	a, err := NewJWT(JWTConfig{HS256Secret: secret, JWKSFile: file, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, _ := json.Marshal(rsaK.Pub)
	for _, key := range [][]byte{pubJSON, set} {
		// Under the RSA key's kid the token is refused before any MAC
		// check; without a kid the MAC fails against the secret.
		tok := rawToken(t, map[string]any{"alg": "HS256", "kid": "r1"}, goodClaims(), logintest.HS256(key))
		if _, err := a.Authenticate(context.Background(), request(tok)); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "names a key of the jwks") {
			t.Fatalf("confused token: err = %v", err)
		}
		tok = rawToken(t, map[string]any{"alg": "HS256"}, goodClaims(), logintest.HS256(key))
		if _, err := a.Authenticate(context.Background(), request(tok)); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "invalid token") {
			t.Fatalf("confused token without kid: err = %v", err)
		}
	}
	// Even signed with the secret, an HS256 token naming a JWKS key's kid
	// is refused; one naming no kid, or a kid the set does not hold, is
	// checked against the secret.
	tok := rawToken(t, map[string]any{"alg": "HS256", "kid": "r1"}, goodClaims(), logintest.HS256(secret))
	if _, err := a.Authenticate(context.Background(), request(tok)); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "names a key of the jwks") {
		t.Fatalf("HS256 under an RSA kid: err = %v", err)
	}
	for _, kid := range []string{"", "hs-1"} {
		hdr := map[string]any{"alg": "HS256"}
		if kid != "" {
			hdr["kid"] = kid
		}
		if _, err := a.Authenticate(context.Background(), request(rawToken(t, hdr, goodClaims(), logintest.HS256(secret)))); err != nil {
			t.Fatalf("HS256 with kid %q: %v", kid, err)
		}
	}
}

func TestJWTLeeway(t *testing.T) {
	a, _ := NewJWT(JWTConfig{HS256Secret: secret, Leeway: 30 * time.Second, Now: func() time.Time { return t0 }})
	c := goodClaims()
	c.exp = t0.Add(-10 * time.Second)
	if _, err := a.Authenticate(context.Background(), request(signHS(t, c, secret))); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	c.exp = t0.Add(-time.Minute)
	if _, err := a.Authenticate(context.Background(), request(signHS(t, c, secret))); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("beyond leeway: %v", err)
	}
}

func TestJWKSRotation(t *testing.T) {
	k1, k2 := logintest.NewKey(t, "rsa", "k1"), logintest.NewKey(t, "ec", "k2")
	idp := logintest.NewIDP(t, k1)
	now := t0
	a, err := NewJWT(JWTConfig{JWKSURL: idp.URL, RefreshMinInterval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, request(sign(t, goodClaims(), k1))); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if _, err := a.Authenticate(ctx, request(sign(t, goodClaims(), k1))); err != nil || idp.Fetches() != 1 {
		t.Fatalf("k1 again: %v, fetches %d (want 1: cached)", err, idp.Fetches())
	}

	// The IdP rotates to k2: the unknown kid triggers one refetch.
	idp.Publish(t, k2)
	now = now.Add(2 * time.Minute)
	if _, err := a.Authenticate(ctx, request(sign(t, goodClaims(), k2))); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if idp.Fetches() != 2 {
		t.Fatalf("fetches = %d, want 2", idp.Fetches())
	}
	if _, err := a.Authenticate(ctx, request(sign(t, goodClaims(), k1))); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("retired k1 still accepted: %v", err)
	}
	// Unknown kids do not hammer the IdP: no refetch within the interval.
	for range 5 {
		a.Authenticate(ctx, request(sign(t, goodClaims(), logintest.NewKey(t, "ec", "bogus"))))
	}
	if idp.Fetches() != 2 {
		t.Fatalf("fetches = %d after unknown kids, want 2 (rate-limited)", idp.Fetches())
	}
}

func TestJWKSUnreachableFailsClosed(t *testing.T) {
	k := logintest.NewKey(t, "rsa", "k1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	now := t0
	a, _ := NewJWT(JWTConfig{JWKSURL: srv.URL, Now: func() time.Time { return now }})
	_, err := a.Authenticate(context.Background(), request(sign(t, goodClaims(), k)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	srv.Close()
	now = now.Add(2 * time.Second) // past the retry backoff: a real fetch fails
	_, err = a.Authenticate(context.Background(), request(sign(t, goodClaims(), k)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed server: err = %v, want ErrUnavailable", err)
	}
}

func TestNewJWTConfigErrors(t *testing.T) {
	for name, cfg := range map[string]JWTConfig{
		"nothing":      {},
		"short secret": {HS256Secret: []byte("short")},
		"file and url": {JWKSFile: "x", JWKSURL: "http://x"},
		"missing file": {JWKSFile: filepath.Join(t.TempDir(), "none.json")},
	} {
		if _, err := NewJWT(cfg); err == nil {
			t.Errorf("%s: NewJWT succeeded", name)
		}
	}
}

func TestTierClaimNested(t *testing.T) {
	a, _ := NewJWT(JWTConfig{HS256Secret: secret, TierClaim: "app_metadata.tier", Now: func() time.Time { return t0 }})
	tok, err := jwt.NewBuilder().Subject("bob").Expiration(t0.Add(time.Hour)).Claim("app_metadata", map[string]any{"tier": "gold"}).Build()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), secret))
	got, err := a.Authenticate(context.Background(), request(string(b)))
	if err != nil || got != (Identity{User: "bob", Tier: "gold"}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestJWTConfigLogValueRedacts(t *testing.T) {
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("login", "cfg", JWTConfig{HS256Secret: secret, Issuer: "iss"})
	if strings.Contains(buf.String(), string(secret)) || !strings.Contains(buf.String(), "REDACTED") {
		t.Fatalf("log line: %s", buf.String())
	}
}

// A symmetric key published in the JWKS is never used: HS256 is only ever
// checked against the configured secret.
func TestJWKSSymmetricKeyIgnored(t *testing.T) {
	rsaK := logintest.NewKey(t, "rsa", "r1")
	oct, err := jwk.Import([]byte("shared-secret-in-the-jwks-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	oct.Set(jwk.KeyIDKey, "s1")
	set := jwk.NewSet()
	set.AddKey(rsaK.Pub)
	set.AddKey(oct)
	raw, _ := json.Marshal(set)
	file := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(file, raw, 0o600)
	a, err := NewJWT(JWTConfig{JWKSFile: file, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	tok := rawToken(t, map[string]any{"alg": "HS256", "kid": "s1"}, goodClaims(), logintest.HS256([]byte("shared-secret-in-the-jwks-0123456789")))
	if _, err := a.Authenticate(context.Background(), request(tok)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("HS256 with a JWKS oct key: err = %v", err)
	}
	if _, err := a.Authenticate(context.Background(), request(sign(t, goodClaims(), rsaK))); err != nil {
		t.Fatalf("RS256 beside an oct key: %v", err)
	}
}
