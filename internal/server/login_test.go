package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/login"
	"github.com/voicegate/voicegate/internal/login/logintest"
)

const jwtSecret = "jwt-secret-for-tests-0123456789abcdef"

// signHS256 builds a compact JWT with header alg and claims, signed with
// secret (an "alg":"none" token gets an empty signature).
func signHS256(t *testing.T, alg string, claims map[string]any, secret string) string {
	t.Helper()
	sig := logintest.HS256([]byte(secret))
	if alg == "none" {
		sig = func(string) []byte { return nil }
	}
	return logintest.RawToken(t, map[string]any{"alg": alg, "typ": "JWT"}, claims, sig)
}

// newLoginEnv is the server with JWT login (issuer, audience, tier claim)
// and, when webhook is non-empty, an auth webhook.
func newLoginEnv(t *testing.T, webhook string) *env {
	e := newEnv(t, func(c *config.Config) { c.Tiers["pro"] = config.Tier{MaxSessionSeconds: 600} })
	j, err := login.NewJWT(login.JWTConfig{HS256Secret: []byte(jwtSecret), Issuer: "https://id.example", Audience: "voicegate", TierClaim: "tier"})
	if err != nil {
		t.Fatal(err)
	}
	l := auth.Logins{JWT: j}
	if webhook != "" {
		w, err := login.NewWebhook(login.WebhookConfig{URL: webhook, CacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		l.Webhook = w
	}
	e.srv.Auth.Login = l
	return e
}

// TestMintWithUserJWT: a valid user JWT mints for its own user and tier;
// expired, wrong audience, wrong issuer, bad signature, alg none and a
// tier other than its own are refused.
func TestMintWithUserJWT(t *testing.T) {
	e := newLoginEnv(t, "")
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "hana", "iss": "https://id.example", "aud": "voicegate", "tier": "pro",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := signHS256(t, "HS256", claims(nil), jwtSecret)
	code, out := e.do("POST", "/v1/realtime/client_secrets", good, map[string]any{})
	if code != 200 {
		t.Fatalf("valid jwt: %d %v", code, out)
	}
	vg := out["voicegate"].(map[string]any)
	if vg["user"] != "hana" || vg["tier"] != "pro" {
		t.Errorf("minted for %v/%v", vg["user"], vg["tier"])
	}
	// A user may not mint for somebody else's tier or loosen its own.
	if code, out := e.do("POST", "/v1/realtime/client_secrets", good, map[string]any{"tier": "default"}); code != 403 {
		t.Errorf("other tier: %d %v", code, out)
	}
	for name, tok := range map[string]string{
		"expired":       signHS256(t, "HS256", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), jwtSecret),
		"not yet valid": signHS256(t, "HS256", claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), jwtSecret),
		"audience":      signHS256(t, "HS256", claims(func(c map[string]any) { c["aud"] = "other" }), jwtSecret),
		"issuer":        signHS256(t, "HS256", claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), jwtSecret),
		"signature":     signHS256(t, "HS256", claims(nil), jwtSecret+"x"),
		"alg none":      signHS256(t, "none", claims(nil), ""),
		"HS384":         signHS256(t, "HS384", claims(nil), jwtSecret),
	} {
		code, out := e.do("POST", "/v1/realtime/client_secrets", tok, map[string]any{})
		if c, _ := errOf(out); code != 401 || c != "invalid_api_key" {
			t.Errorf("%s: %d %v", name, code, out)
		}
	}
}

// TestMintWithAuthWebhook: the webhook path mints for the user it vouches
// for, refuses what it refuses, and fails closed (503) when it errs.
func TestMintWithAuthWebhook(t *testing.T) {
	mode := "ok"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case mode == "down":
			http.Error(w, "boom", http.StatusInternalServerError)
		case r.Header.Get("Cookie") == "sid=good":
			_ = json.NewEncoder(w).Encode(map[string]string{"user": "ivan", "tier": "pro"})
		default:
			http.Error(w, "no", http.StatusUnauthorized)
		}
	}))
	defer hook.Close()
	e := newLoginEnv(t, hook.URL)
	code, out := e.do("POST", "/v1/realtime/client_secrets", "", map[string]any{}, "Cookie", "sid=good")
	if code != 200 || out["voicegate"].(map[string]any)["user"] != "ivan" {
		t.Fatalf("webhook mint: %d %v", code, out)
	}
	if code, out := e.do("POST", "/v1/realtime/client_secrets", "", map[string]any{}, "Cookie", "sid=bad"); code != 401 {
		t.Errorf("refused cookie: %d %v", code, out)
	}
	mode = "down"
	code, out = e.do("POST", "/v1/realtime/client_secrets", "", map[string]any{}, "Cookie", "sid=good")
	if c, _ := errOf(out); code != 503 || c != "login_unavailable" {
		t.Errorf("webhook down: %d %v", code, out)
	}
}
