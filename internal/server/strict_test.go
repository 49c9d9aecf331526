package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
)

// TestMintStrictInput: the mint refuses keys in another case, duplicate
// keys at any depth, integer limits that would wrap as a duration, and
// bodies that are not sent as JSON.
func TestMintStrictInput(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, body, code string
		status           int
		param            any
	}{
		{"Session", `{"Session":{"model":"gpt-realtime"}}`, "unknown_parameter", 400, "Session"},
		{"USER", `{"USER":"mallory"}`, "unknown_parameter", 400, "USER"},
		{"nested case", `{"expires_after":{"Seconds":60}}`, "unknown_parameter", 400, "expires_after.Seconds"},
		{"limits case", `{"limits":{"Budget_USD":1}}`, "unknown_parameter", 400, "limits.Budget_USD"},
		{"duplicate top", `{"user":"a","user":"b"}`, "duplicate_key", 400, nil},
		{"duplicate nested", `{"limits":{"budget_usd":0.1,"budget_usd":100}}`, "duplicate_key", 400, nil},
		{"duplicate in session", `{"session":{"instructions":"a","instructions":"b"}}`, "duplicate_key", 400, nil},
		{"idle wraps", `{"limits":{"idle_timeout_seconds":18446744074}}`, "invalid_value", 400, "limits.idle_timeout_seconds"},
		{"max session wraps", `{"limits":{"max_session_seconds":9223372037}}`, "", 400, "limits.max_session_seconds"},
		{"overflow int", `{"limits":{"max_concurrent":1e30}}`, "invalid_type", 400, "limits.max_concurrent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, tt.body)
			code, param := errOf(out)
			if status != tt.status || (tt.code != "" && code != tt.code) || (tt.param != nil && param != tt.param) {
				t.Errorf("%s: %d %s %v, want %d %s %v", tt.body, status, code, param, tt.status, tt.code, tt.param)
			}
		})
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/realtime/client_secrets", stringsReader(`{"user":"u"}`))
		req.Header.Set("Authorization", "Bearer "+testAdmin)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d, want 415", ct, resp.StatusCode)
		}
	}
	if status, _ := e.do("POST", "/v1/realtime/client_secrets", testAdmin, `{"user":"u"}`, "Content-Type", "application/json; charset=utf-8"); status != 200 {
		t.Errorf("application/json; charset=utf-8: %d, want 200", status)
	}
}

// TestMintHonoursAllowedOrigins: with --allowed-origins set, a mint from
// another origin is refused; one without Origin (a backend) or from an
// allowed origin passes.
func TestMintHonoursAllowedOrigins(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	if status, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, `{}`, "Origin", "https://evil.example.net"); status != 403 {
		t.Errorf("foreign origin: %d %v, want 403", status, out)
	}
	if status, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, `{}`, "Origin", "https://app.example.com"); status != 200 {
		t.Errorf("allowed origin: %d %v, want 200", status, out)
	}
	if status, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, `{}`); status != 200 {
		t.Errorf("no origin: %d %v, want 200", status, out)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
