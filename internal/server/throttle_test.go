package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
)

// TestAuthFailuresThrottledPerSource: bogus WebSocket connects from one
// address get 401 for the first failures, then 429 with Retry-After and no
// further audit row; once the failures have drained the address may try
// again.
func TestAuthFailuresThrottledPerSource(t *testing.T) {
	e := newEnv(t, nil)
	statuses := map[int]int{}
	for i := range 200 {
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/realtime", nil)
		req.Header.Set("Authorization", "Bearer ek_vg_bogus"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if statuses[http.StatusUnauthorized] > authFailBurst+1 || statuses[http.StatusTooManyRequests] < 200-authFailBurst-1 {
		t.Fatalf("statuses = %v, want at most %d × 401 then 429", statuses, authFailBurst+1)
	}
	rows, err := e.st.AuditEntries(t.Context(), store.AuditFilter{Kind: "auth_refused"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > authFailBurst+1 {
		t.Errorf("%d auth_refused rows for 200 bogus connects, want at most %d", len(rows), authFailBurst+1)
	}
	// The admin key from the same address is not locked out by another
	// client's failures (a NAT, a proxy): only failures are throttled.
	if code, out := e.do("GET", "/voicegate/v1/sessions", testAdmin, nil); code != http.StatusOK {
		t.Fatalf("admin from a throttled source: %d %v, want 200", code, out)
	}
	// Once the failures have drained, a failure is a 401 again.
	e.clock.Add(time.Duration(authFailBurst+2) * authFailEvery)
	if code, _ := e.do("GET", "/voicegate/v1/sessions", "wrong", nil); code != http.StatusUnauthorized {
		t.Fatalf("after the drain: %d, want 401", code)
	}
}

// TestAuthFailuresThrottledPerCredential: the same bad credential tried
// from many addresses is throttled by its prefix.
func TestAuthFailuresThrottledPerCredential(t *testing.T) {
	e := newEnv(t, nil)
	var last int
	for i := range 40 {
		req := httptest.NewRequest("POST", "/v1/realtime/client_secrets", strings.NewReader(`{}`))
		req.RemoteAddr = "10.0." + string(rune('0'+i/10)) + "." + string(rune('0'+i%10)) + ":1234"
		req.Header.Set("Authorization", "Bearer vgk_stolen_or_guessed_key_0123456789")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		last = w.Code
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("40th try of one bad key from 40 addresses: %d, want 429", last)
	}
}

// TestFailedLoginPathBounded: a failed login with a 64 KiB path stores and
// logs a bounded path.
func TestFailedLoginPathBounded(t *testing.T) {
	e := newEnv(t, nil)
	long := "/voicegate/v1/sessions/" + strings.Repeat("A", 64<<10)
	req := httptest.NewRequest("GET", long, nil)
	req.Header.Set("Authorization", "Bearer wrong")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", w.Code)
	}
	rows, err := e.st.AuditEntries(t.Context(), store.AuditFilter{Kind: "auth_refused"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("audit rows %d, %v", len(rows), err)
	}
	if p, _ := rows[0].Detail["path"].(string); len(p) > maxLoggedPath || !strings.HasPrefix(p, "/voicegate/v1/sessions/AAA") {
		t.Errorf("audited path of %d bytes: %.60q", len(p), p)
	}
	for _, line := range strings.Split(e.Logs(), "\n") {
		if len(line) > 2048 {
			t.Errorf("log line of %d bytes: %.120s", len(line), line)
		}
	}
}

// TestMetricsToken: with a metrics token configured, /metrics answers 401
// without it and 200 with it; without one it stays open.
func TestMetricsToken(t *testing.T) {
	open := newEnv(t, nil)
	if code, _ := open.do("GET", "/metrics", "", nil); code != http.StatusOK {
		t.Errorf("open /metrics: %d", code)
	}
	e := newEnv(t, func(c *config.Config) { c.MetricsToken = "scrape-token-0123456789" })
	for _, bearer := range []string{"", "wrong", testAdmin} {
		if code, _ := e.do("GET", "/metrics", bearer, nil); code != http.StatusUnauthorized {
			t.Errorf("/metrics with %q: %d, want 401", bearer, code)
		}
	}
	if code, _ := e.do("GET", "/metrics", "scrape-token-0123456789", nil); code != http.StatusOK {
		t.Errorf("/metrics with the token: %d, want 200", code)
	}
}
