package server

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

func TestMintClientSecrets(t *testing.T) {
	e := newEnv(t, nil)
	out := e.mint(map[string]any{
		"expires_after": map[string]any{"anchor": "created_at", "seconds": 120},
		"session":       map[string]any{"type": "realtime", "instructions": "Be brief.", "audio": map[string]any{"output": map[string]any{"voice": "marin"}}},
		"user":          "alice",
	})
	value, _ := out["value"].(string)
	tok, err := token.Parse(value)
	if err != nil || !tok.IsSession() {
		t.Fatalf("value %q: %v", value, err)
	}
	if got, want := int64(out["expires_at"].(float64)), e.clock.Now().Add(120*time.Second).Unix(); got != want {
		t.Errorf("expires_at = %d, want %d", got, want)
	}
	sess := out["session"].(map[string]any)
	if sess["object"] != "realtime.session" || sess["model"] != "gpt-realtime" || sess["instructions"] != "Be brief." || sess["type"] != "realtime" {
		t.Errorf("session = %v", sess)
	}
	vg := out["voicegate"].(map[string]any)
	if vg["user"] != "alice" || vg["tier"] != "default" || !strings.HasPrefix(vg["session_id"].(string), "vgs_") || sess["id"] != vg["session_id"] {
		t.Errorf("voicegate = %v", vg)
	}
	if lim := vg["limits"].(map[string]any); lim["max_session_seconds"] != 1800.0 {
		t.Errorf("limits = %v", lim)
	}
	// Stored by hash only, with the pinned config.
	st, err := e.st.SessionByTokenHash(context.Background(), tok.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if st.TokenHash == value || !strings.Contains(string(st.Config), "Be brief.") || st.Model != "gpt-realtime" || st.State != store.StateMinted {
		t.Errorf("stored %+v", st)
	}
	if strings.Contains(e.Logs(), value) {
		t.Error("token in logs")
	}
	audit, _ := e.st.AuditEntries(context.Background(), store.AuditFilter{Kind: "mint"})
	if len(audit) != 1 || audit[0].SessionID != st.ID || audit[0].Detail["token_id"] != tok.ID() {
		t.Errorf("audit %+v", audit)
	}
}

func TestMintSafetyHeaderAndDefaults(t *testing.T) {
	e := newEnv(t, nil)
	code, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, nil, "OpenAI-Safety-Identifier", "hashed-bob")
	if code != 200 {
		t.Fatal(code, out)
	}
	if out["voicegate"].(map[string]any)["user"] != "hashed-bob" {
		t.Errorf("user from header: %v", out["voicegate"])
	}
	if got, want := int64(out["expires_at"].(float64)), e.clock.Now().Add(600*time.Second).Unix(); got != want {
		t.Errorf("default ttl: %d want %d", got, want)
	}
	_, out = e.do("POST", "/v1/realtime/client_secrets", testAdmin, "{}")
	if out["voicegate"].(map[string]any)["user"] != "anonymous" {
		t.Errorf("default user: %v", out["voicegate"])
	}
}

func TestMintValidation(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		param  any
	}{
		{"anchor", `{"expires_after":{"anchor":"now","seconds":60}}`, 400, "invalid_value", "expires_after.anchor"},
		{"seconds low", `{"expires_after":{"anchor":"created_at","seconds":5}}`, 400, "integer_out_of_range", "expires_after.seconds"},
		{"seconds high", `{"expires_after":{"seconds":7201}}`, 400, "integer_out_of_range", "expires_after.seconds"},
		{"over tier max", `{"tier":"pro","expires_after":{"seconds":1000}}`, 400, "integer_out_of_range", "expires_after.seconds"},
		{"unknown session field", `{"session":{"type":"realtime","voice":"alloy"}}`, 400, "unknown_parameter", "session.voice"},
		{"unknown top-level", `{"sesion":{}}`, 400, "unknown_parameter", "sesion"},
		{"bad type", `{"session":{"type":"translation"}}`, 400, "invalid_value", "session.type"},
		{"transcription not allowed", `{"session":{"type":"transcription"}}`, 403, "session_type_not_allowed", "session.type"},
		{"model not allowed", `{"session":{"model":"gpt-5"}}`, 400, "model_not_allowed", "session.model"},
		{"model of other tier", `{"tier":"pro","session":{"model":"gpt-realtime"}}`, 400, "model_not_allowed", "session.model"},
		{"unknown tier", `{"tier":"gold"}`, 400, "invalid_value", "tier"},
		{"looser budget", `{"tier":"pro","limits":{"budget_usd":6}}`, 400, "limit_not_tighter", "limits.budget_usd"},
		{"looser duration", `{"limits":{"max_session_seconds":3601}}`, 400, "limit_not_tighter", "limits.max_session_seconds"},
		{"zero is looser", `{"limits":{"max_session_seconds":0}}`, 400, "invalid_value", "limits.max_session_seconds"},
		{"unknown limit", `{"limits":{"max_tokens":3}}`, 400, "unknown_parameter", "limits.max_tokens"},
		{"bad json", `{"session":`, 400, "invalid_json", nil},
		{"wrong type", `{"expires_after":{"seconds":"60"}}`, 400, "invalid_type", "expires_after.seconds"},
		{"session not an object", `{"session":"realtime"}`, 400, "invalid_type", "session"},
		{"voice unknown", `{"session":{"audio":{"output":{"voice":"bogus"}}}}`, 400, "voice_not_allowed", "session.audio.output.voice"},
		{"nested format rate", `{"session":{"audio":{"output":{"format":{"type":"audio/pcm","rate":16000}}}}}`, 400, "invalid_value", "session.audio.output.format.rate"},
		{"nested unknown", `{"session":{"audio":{"output":{"volume":11}}}}`, 400, "unknown_parameter", "session.audio.output.volume"},
		{"nested wrong type", `{"session":{"audio":{"input":"loud"}}}`, 400, "invalid_type", "session.audio.input"},
		{"nested missing", `{"session":{"audio":{"input":{"transcription":{"language":"en"}}}}}`, 400, "missing_required_parameter", "session.audio.input.transcription.model"},
		{"max_output_tokens", `{"session":{"max_output_tokens":5000}}`, 400, "invalid_value", "session.max_output_tokens"},
		{"tracing", `{"session":{"tracing":"always"}}`, 400, "invalid_value", "session.tracing"},
		{"transcription extra field", `{"tier":"pro","session":{"type":"transcription","instructions":"x"}}`, 400, "unknown_parameter", "session.instructions"},
		{"zero budget", `{"limits":{"budget_usd":0}}`, 400, "invalid_value", "limits.budget_usd"},
		{"negative idle", `{"limits":{"idle_timeout_seconds":-1}}`, 400, "invalid_value", "limits.idle_timeout_seconds"},
		{"limits not an object", `{"limits":[1]}`, 400, "invalid_type", "limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, tt.body)
			code, param := errOf(out)
			if status != tt.status || code != tt.code || param != tt.param {
				t.Fatalf("got %d %q %v, want %d %q %v (%v)", status, code, param, tt.status, tt.code, tt.param, out)
			}
		})
	}
}

func TestMintLimitsTighten(t *testing.T) {
	e := newEnv(t, nil)
	out := e.mint(map[string]any{"tier": "pro", "limits": map[string]any{"budget_usd": 0.25, "max_session_seconds": 60, "idle_timeout_seconds": 30, "max_concurrent": 2}})
	lim := out["voicegate"].(map[string]any)["limits"].(map[string]any)
	if lim["budget_usd"] != 0.25 || lim["max_session_seconds"] != 60.0 || lim["idle_timeout_seconds"] != 30.0 || lim["max_concurrent"] != 2.0 {
		t.Fatalf("limits %v", lim)
	}
	id := out["voicegate"].(map[string]any)["session_id"].(string)
	s, _ := e.st.Session(context.Background(), id)
	if s.Limits.BudgetNanoUSD != 250_000_000 || s.Model != "gpt-realtime-mini" || s.Tier != "pro" {
		t.Fatalf("stored %+v", s)
	}
}

func TestMintAuth(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tok, key, err := auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	code, out := e.do("POST", "/v1/realtime/client_secrets", tok.Reveal(), `{"user":"u1"}`)
	if code != 200 || out["voicegate"].(map[string]any)["user"] != "u1" {
		t.Fatalf("app key mint: %d %v", code, out)
	}
	s, _ := e.st.Session(ctx, out["voicegate"].(map[string]any)["session_id"].(string))
	if s.AppKeyID != key.ID {
		t.Errorf("app key id %q", s.AppKeyID)
	}
	if code, out := e.do("POST", "/v1/realtime/client_secrets", tok.Reveal(), `{"tier":"pro"}`); code != 403 {
		t.Errorf("tier outside key scope: %d %v", code, out)
	}

	// The key with its last character changed (to one it does not end in:
	// "x" alone matched one key in 62).
	last := "x"
	if strings.HasSuffix(tok.Reveal(), last) {
		last = "y"
	}
	bad := tok.Reveal()[:len(tok.Reveal())-1] + last
	for _, cred := range []string{"", "nope", bad, testAdmin + "x"} {
		code, out := e.do("POST", "/v1/realtime/client_secrets", cred, nil)
		if c, _ := errOf(out); code != 401 || c != "invalid_api_key" {
			t.Errorf("cred %q: %d %v", cred, code, out)
		}
	}
	e.st.RevokeKey(ctx, key.ID, e.clock.Now())
	if code, _ := e.do("POST", "/v1/realtime/client_secrets", tok.Reveal(), nil); code != 401 {
		t.Errorf("revoked key minted: %d", code)
	}
	refused, _ := e.st.AuditEntries(ctx, store.AuditFilter{Kind: "auth_refused"})
	if len(refused) != 5 {
		t.Fatalf("auth_refused entries = %d", len(refused))
	}
	reasons := map[any]int{}
	for _, a := range refused {
		reasons[a.Detail["reason"]]++
		if a.Detail["remote"] != "127.0.0.1" {
			t.Errorf("remote %v", a.Detail["remote"])
		}
	}
	if reasons["missing"] != 1 || reasons["invalid"] != 2 || reasons["malformed"] != 1 || reasons["revoked"] != 1 {
		t.Errorf("reasons %v", reasons)
	}
	for _, secret := range []string{tok.Reveal(), bad, testAdmin} {
		if strings.Contains(e.Logs(), secret) {
			t.Errorf("secret in logs")
		}
		for _, a := range refused {
			for _, v := range a.Detail {
				if s, ok := v.(string); ok && strings.Contains(s, secret[:20]) {
					t.Errorf("secret in audit")
				}
			}
		}
	}
}

func TestSeedRoute(t *testing.T) {
	e := newEnv(t, nil)
	code, out := e.do("POST", "/api/voice/session", testAdmin, `{"user":"carol","expires_after":{"seconds":60}}`)
	if code != 201 {
		t.Fatal(code, out)
	}
	if _, err := token.Parse(out["sessionToken"].(string)); err != nil {
		t.Error(err)
	}
	if out["expiresIn"] != 60.0 || out["model"] != "gpt-realtime" || !strings.HasPrefix(out["sessionId"].(string), "vgs_") || out["expiresAt"] == nil {
		t.Errorf("seed response %v", out)
	}
}

func TestErrorEnvelopes(t *testing.T) {
	e := newEnv(t, nil)
	code, out := e.do("GET", "/v1/nothing", "", nil)
	if c, param := errOf(out); code != 404 || c != "unknown_url" || param != nil {
		t.Errorf("%d %v", code, out)
	}
	code, out = e.do("GET", "/voicegate/v1/sessions/vgs_nope", testAdmin, nil)
	if c, _ := errOf(out); code != 404 || c != "not_found" {
		t.Errorf("%d %v", code, out)
	}
	big := `{"user":"` + strings.Repeat("a", maxBody) + `"}`
	code, out = e.do("POST", "/v1/realtime/client_secrets", testAdmin, big)
	if c, _ := errOf(out); code != 413 || c != "request_too_large" {
		t.Errorf("%d %v", code, out)
	}
}
