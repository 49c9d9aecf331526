package server

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/voicegate/voicegate/internal/govern"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/relay"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

const simKey = "sk-sim-server-governance-test"

// newGovEnv is the real server, relay and governance in front of the
// simulator (fast pace), with tier "default" as given.
func newGovEnv(t *testing.T, tier policy.Tier, leaseTTL time.Duration) *env {
	t.Helper()
	cfg := config.Default()
	cfg.AdminKey = testAdmin
	cfg.Store = "memory"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	simSrv := sim.New(sim.Options{APIKeys: []string{simKey}, Pace: sim.PaceFast})
	up := httptest.NewServer(simSrv.Handler())
	tier.Name = "default"
	gov := &govern.Governor{Store: st, Tiers: map[string]policy.Tier{"default": tier}, Metrics: govern.NewMetrics(nil), Instance: "test-1", LeaseTTL: leaseTTL}
	rl := &relay.Relay{Upstream: up.URL + "/v1", APIKey: simKey, Governor: gov, Instance: "test-1"}
	e := &env{t: t, st: st, clock: &clock{}, logs: nil}
	e.srv = NewServer(Deps{Config: cfg, Store: st, Relay: rl, Instance: "test-1", LeaseTTL: leaseTTL,
		Govern: gov})
	e.ts = httptest.NewServer(e.srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.WatchRevocations(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = rl.Shutdown(sctx)
		e.ts.Close()
		up.Close()
		cancel()
		<-done
		st.Close()
	})
	return e
}

func govTier() policy.Tier {
	t := policy.DefaultTier()
	t.Budget = policy.Budget{}
	t.Rates = policy.Rates{}
	t.Concurrency = policy.Concurrency{}
	return t
}

// dialLive connects with tok and waits for session.created.
func dialLive(t *testing.T, e *env, tok string) *websocket.Conn {
	t.Helper()
	c, resp, err := e.dial(tok, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for session.created: %v", err)
		}
		if typ, _ := realtime.EventType(b); typ == realtime.TypeSessionCreated {
			return c
		}
	}
}

// refused429 dials tok and checks a 429 rate_limit_exceeded with a
// Retry-After of at least one second.
func refused429(t *testing.T, e *env, tok string) int {
	t.Helper()
	_, resp, err := e.dial(tok, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("want 429, got %v %v", resp, err)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	if env.Error.Code != "rate_limit_exceeded" {
		t.Errorf("error code %q", env.Error.Code)
	}
	return ra
}

// TestConcurrencyCapPerUser: the per-user cap admits exactly its limit of
// live sessions, refuses the next with 429 + Retry-After, and admits again
// once one ends.
func TestConcurrencyCapPerUser(t *testing.T) {
	tier := govTier()
	tier.Concurrency.PerUser = 2
	e := newGovEnv(t, tier, 15*time.Second)
	var toks []string
	for range 3 {
		tok, _ := mintToken(e, map[string]any{"user": "ulla"})
		toks = append(toks, tok)
	}
	a := dialLive(t, e, toks[0])
	b := dialLive(t, e, toks[1])
	refused429(t, e, toks[2])
	_ = a.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, _ := e.st.LeaseCount(context.Background(), "user:ulla")
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user lease count %d after close", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := dialLive(t, e, toks[2])
	_ = b.Close(websocket.StatusNormalClosure, "")
	_ = c.Close(websocket.StatusNormalClosure, "")
	// Another user is not affected.
	tok, _ := mintToken(e, map[string]any{"user": "vic"})
	_ = dialLive(t, e, tok).Close(websocket.StatusNormalClosure, "")
}

// TestConcurrencyLeaseExpires: a slot held by an instance that died (a
// lease never renewed) is freed within its TTL.
func TestConcurrencyLeaseExpires(t *testing.T) {
	tier := govTier()
	tier.Concurrency.PerUser = 1
	const ttl = 300 * time.Millisecond
	e := newGovEnv(t, tier, ttl)
	if ok, _ := e.st.AcquireLease(context.Background(), "user:walt", "dead-instance/x", 1, ttl); !ok {
		t.Fatal("seed lease")
	}
	tok, _ := mintToken(e, map[string]any{"user": "walt"})
	refused429(t, e, tok)
	time.Sleep(ttl + 50*time.Millisecond)
	_ = dialLive(t, e, tok).Close(websocket.StatusNormalClosure, "")
}

// TestConnectRateLimitPerUser: connects per user per minute are refused
// exactly past the limit.
func TestConnectRateLimitPerUser(t *testing.T) {
	tier := govTier()
	tier.Rates.ConnectsPerUserPerMinute = 2
	e := newGovEnv(t, tier, 15*time.Second)
	for range 2 {
		tok, _ := mintToken(e, map[string]any{"user": "xena"})
		_ = dialLive(t, e, tok).Close(websocket.StatusNormalClosure, "")
	}
	tok, _ := mintToken(e, map[string]any{"user": "xena"})
	if ra := refused429(t, e, tok); ra > 30 {
		t.Errorf("Retry-After %d s for a 2/min limit", ra)
	}
	other, _ := mintToken(e, map[string]any{"user": "yuri"})
	_ = dialLive(t, e, other).Close(websocket.StatusNormalClosure, "")
}

// TestRevokeUserClosesLiveSessions: the kill switch closes every live
// session of a user within a second (measured) and refuses reconnects.
func TestRevokeUserClosesLiveSessions(t *testing.T) {
	e := newGovEnv(t, govTier(), 15*time.Second)
	tok1, _ := mintToken(e, map[string]any{"user": "zed"})
	tok2, _ := mintToken(e, map[string]any{"user": "zed"})
	conns := []*websocket.Conn{dialLive(t, e, tok1), dialLive(t, e, tok2)}
	start := time.Now()
	if code, out := e.do("POST", "/voicegate/v1/users/zed/revoke", testAdmin, nil); code != 200 {
		t.Fatalf("revoke: %d %v", code, out)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var sawRevoked bool
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !sawRevoked {
						t.Errorf("close %v, revoked event %v", err, sawRevoked)
					}
					return
				}
				sawRevoked = sawRevoked || strings.Contains(string(b), "session_revoked")
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > time.Second {
		t.Errorf("revocation took %v", d)
	}
	if _, resp, err := e.dial(tok1, nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("reconnect after revoke: %v %v", resp, err)
	}
}

// TestMaxSessionSecondsWarnsAndCloses: max_session_seconds 3 sends
// session_expiring (at the tier's lead, a third of a short session) and
// closes with session_expired at 3 s ± 0.5 s.
func TestMaxSessionSecondsWarnsAndCloses(t *testing.T) {
	e := newGovEnv(t, govTier(), 15*time.Second)
	tok, _ := mintToken(e, map[string]any{"user": "amy", "limits": map[string]any{"max_session_seconds": 3}})
	start := time.Now()
	c := dialLive(t, e, tok)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	var warnedAt time.Duration
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			d := time.Since(start)
			var ce websocket.CloseError
			if !asClose(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "session_expired" {
				t.Errorf("close %v", err)
			}
			if d < 2500*time.Millisecond || d > 3500*time.Millisecond {
				t.Errorf("closed after %v, want 3 s ± 0.5 s", d)
			}
			if warnedAt < 1500*time.Millisecond || warnedAt > 2500*time.Millisecond {
				t.Errorf("warned after %v, want about 2 s", warnedAt)
			}
			return
		}
		if strings.Contains(string(b), "session_expiring") && warnedAt == 0 {
			warnedAt = time.Since(start)
		}
	}
}

// TestIdleTimeoutCloses: a silent client is closed with idle_timeout after
// idle_timeout_seconds (± 0.5 s).
func TestIdleTimeoutCloses(t *testing.T) {
	e := newGovEnv(t, govTier(), 15*time.Second)
	tok, _ := mintToken(e, map[string]any{"user": "bo", "limits": map[string]any{"idle_timeout_seconds": 1}})
	start := time.Now()
	c := dialLive(t, e, tok)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			d := time.Since(start)
			var ce websocket.CloseError
			if !asClose(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "idle_timeout" {
				t.Errorf("close %v", err)
			}
			if d < 900*time.Millisecond || d > 1600*time.Millisecond {
				t.Errorf("idle close after %v, want 1 s ± 0.5 s", d)
			}
			return
		}
	}
}

func asClose(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }

// TestMintRateLimits: mints per user and per app key are refused exactly
// past their per-minute limits with 429 + Retry-After.
func TestMintRateLimits(t *testing.T) {
	tier := govTier()
	tier.Rates.MintsPerUserPerMinute = 2
	tier.Rates.MintsPerAppKeyPerMinute = 3
	e := newGovEnv(t, tier, 15*time.Second)
	code, key := e.do("POST", "/voicegate/v1/keys", testAdmin, map[string]any{"name": "app"})
	if code != 201 {
		t.Fatalf("key: %d %v", code, key)
	}
	appKey := key["value"].(string)
	mint := func(user string) *http.Response {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/realtime/client_secrets", strings.NewReader(`{"user":"`+user+`"}`))
		req.Header.Set("Authorization", "Bearer "+appKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	check := func(resp *http.Response, want int) {
		t.Helper()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
		if want == 429 {
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	check(mint("kim"), 200)
	check(mint("kim"), 200)
	check(mint("kim"), 429) // third for the user
	check(mint("lou"), 200) // third for the key
	check(mint("max"), 429) // fourth for the key
}

// TestRevocationFromAnotherInstance: an app-key revocation published on
// the bus by another instance closes this instance's live sessions of the
// key within a second.
func TestRevocationFromAnotherInstance(t *testing.T) {
	e := newGovEnv(t, govTier(), 15*time.Second)
	code, key := e.do("POST", "/voicegate/v1/keys", testAdmin, map[string]any{"name": "app"})
	if code != 201 {
		t.Fatalf("key: %d %v", code, key)
	}
	code, out := e.do("POST", "/v1/realtime/client_secrets", key["value"].(string), map[string]any{"user": "olga"})
	if code != 200 {
		t.Fatalf("mint: %d %v", code, out)
	}
	c := dialLive(t, e, out["value"].(string))
	start := time.Now()
	if err := e.st.PublishRevocation(context.Background(), store.Revocation{Kind: "app_key", ID: key["id"].(string), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Errorf("close %v", err)
			}
			break
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("closed after %v", d)
	}
}
