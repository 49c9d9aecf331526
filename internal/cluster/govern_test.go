package cluster

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
)

// governConfig writes a config file with one default tier: per-user
// concurrency 1 and mintsPerMinute mints per user per minute.
func governConfig(t *testing.T, mintsPerMinute int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "voicegate.yaml")
	y := "tiers:\n  default:\n    concurrency:\n      per_user: 1\n    rates:\n      mints_per_user_per_minute: " +
		strconv.Itoa(mintsPerMinute) + "\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrencyCapAcrossInstances: with per_user 1, a user live on A
// cannot open a second session on B; once the first closes, B accepts.
func TestConcurrencyCapAcrossInstances(t *testing.T) {
	url, _, _ := redistest.Start(t)
	up, key, _ := simulator(t)
	cfg := governConfig(t, 600)
	a := startInstance(t, "a", url, up, key, "--config", cfg)
	b := startInstance(t, "b", url, up, key, "--config", cfg)
	tok1, _ := mint(t, a, "frank")
	tok2, _ := mint(t, b, "frank")
	c1 := connect(t, a, tok1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() (*websocket.Conn, int, error) {
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.base, "http")+"/v1/realtime?model=gpt-realtime",
			&websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tok2}})
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return c, code, err
	}
	if c, code, err := dial(); err == nil {
		c.CloseNow()
		t.Fatal("second live session of frank on B accepted while one is live on A (cap 1)")
	} else if code != http.StatusTooManyRequests {
		t.Fatalf("refusal status %d (%v), want 429", code, err)
	}
	c1.Close(websocket.StatusNormalClosure, "")
	eventually(t, 5*time.Second, "cap frees after close", func() bool {
		c, _, err := dial()
		if err != nil {
			return false
		}
		c.CloseNow()
		return true
	})
}

// TestMintRateLimitAcrossInstances: 64 concurrent clients minting for one
// user through A, B and C share one GCRA key in Redis: the number allowed
// never exceeds burst + rate × elapsed.
func TestMintRateLimitAcrossInstances(t *testing.T) {
	url, _, _ := redistest.Start(t)
	up, key, _ := simulator(t)
	const perMinute = 20 // burst = rate = 20
	cfg := governConfig(t, perMinute)
	ins := []*instance{
		startInstance(t, "a", url, up, key, "--config", cfg),
		startInstance(t, "b", url, up, key, "--config", cfg),
		startInstance(t, "c", url, up, key, "--config", cfg),
	}
	var (
		mu      sync.Mutex
		allowed int
		limited int
		other   []int
		wg      sync.WaitGroup
	)
	start := time.Now()
	for i := range 64 {
		wg.Add(1)
		go func() { // owner: test; exits after its requests
			defer wg.Done()
			in := ins[i%3]
			for range 3 {
				req, _ := http.NewRequest("POST", in.base+"/v1/realtime/client_secrets", strings.NewReader(`{"user":"gina"}`))
				req.Header.Set("Authorization", "Bearer "+adminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case 200:
					allowed++
				case 429:
					limited++
				default:
					other = append(other, resp.StatusCode)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	bound := perMinute + int(elapsed.Seconds()*perMinute/60)
	t.Logf("allowed %d, limited %d in %v (bound %d)", allowed, limited, elapsed, bound)
	if len(other) > 0 {
		t.Fatalf("unexpected statuses %v", other)
	}
	if allowed > bound {
		t.Fatalf("allowed %d > burst + rate×elapsed = %d: over-grant across instances", allowed, bound)
	}
	if allowed < perMinute {
		t.Fatalf("allowed %d < burst %d", allowed, perMinute)
	}
}

// respond sends one text turn and reports whether it completed (false when
// the gateway answered budget_exceeded or closed the session for budget).
func respond(t *testing.T, c *websocket.Conn) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range []string{
		`{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"spend some budget please"}]}}`,
		`{"type":"response.create"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			return false
		}
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Logf("read: %v", err)
			return false
		}
		s := string(data)
		if strings.Contains(s, `"type":"error"`) {
			t.Logf("error event: %s", s)
		}
		if strings.Contains(s, "budget_exceeded") {
			return false
		}
		if strings.Contains(s, `"type":"response.done"`) {
			return true
		}
	}
}

// TestUserBudgetAcrossInstances: a user who spends the day budget through A
// cannot get a response through a new session on B.
func TestUserBudgetAcrossInstances(t *testing.T) {
	url, _, _ := redistest.Start(t)
	up, key, _ := simulator(t)
	p := filepath.Join(t.TempDir(), "voicegate.yaml")
	y := "tiers:\n  default:\n    budget:\n      user_day_usd: 0.005\n      user_month_usd: 1\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startInstance(t, "a", url, up, key, "--config", p)
	b := startInstance(t, "b", url, up, key, "--config", p)

	// Fresh sessions on A (each asks for the same first-response hold)
	// until the user's day budget refuses one.
	done := 0
	for ; done < 100; done++ {
		tok, _ := mint(t, a, "hank")
		c := connect(t, a, tok)
		ok := respond(t, c)
		c.Close(websocket.StatusNormalClosure, "")
		if !ok {
			break
		}
	}
	if done == 0 || done == 100 {
		t.Fatalf("A completed %d fresh-session responses; want some, then budget_exceeded", done)
	}
	t.Logf("A completed %d responses before the user's day budget ran out", done)
	tokB, _ := mint(t, b, "hank")
	if respond(t, connect(t, b, tokB)) {
		t.Fatal("B completed a response for a user whose day budget was spent on A")
	}
	tokI, _ := mint(t, b, "ivy") // control: another user still has budget on B
	if !respond(t, connect(t, b, tokI)) {
		t.Fatal("B refused a user with untouched budget")
	}
}

// TestEmptyRedisRestartReacquiresLeases: Redis restarts with an empty
// dataset while frank is live on A (per-user cap 1). A's lease renewal
// finds its leases gone and acquires them again, so a second session of
// frank on B is still refused; A's session keeps working throughout.
func TestEmptyRedisRestartReacquiresLeases(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	url, _, restart := redistest.Start(t)
	up, key, _ := simulator(t)
	cfg := governConfig(t, 600)
	a := startInstance(t, "a", url, up, key, "--config", cfg, "--lease-ttl", ttl.String())
	b := startInstance(t, "b", url, up, key, "--config", cfg, "--lease-ttl", ttl.String())
	rs, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	tok1, id1 := mint(t, a, "frank")
	c1 := connect(t, a, tok1)
	turn(t, c1, "before the restart")

	restart()
	eventually(t, 3*ttl, "leases of the live session acquired again", func() bool {
		nu, err1 := rs.LeaseCount(context.Background(), "user:frank")
		nt, err2 := rs.LeaseCount(context.Background(), "tok:"+id1)
		return err1 == nil && err2 == nil && nu == 1 && nt == 1
	})
	tok2, _ := mint(t, b, "frank")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.base, "http")+"/v1/realtime?model=gpt-realtime",
		&websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tok2}})
	if err == nil {
		c.CloseNow()
		t.Fatal("second live session of frank accepted after the empty restart (cap 1)")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("refusal %v (%v), want 429", resp, err)
	}
	turn(t, c1, "after the restart")
	// The live session's record was re-created from the connection, so it
	// can be listed and revoked again.
	eventually(t, 5*time.Second, "session record re-created", func() bool {
		code, _ := do(t, "GET", a.base+"/voicegate/v1/sessions/"+id1, "")
		return code == http.StatusOK
	})
	// … and revoked from another instance, over the resubscribed bus.
	if code, m := do(t, "DELETE", b.base+"/voicegate/v1/sessions/"+id1, ""); code != http.StatusOK {
		t.Fatalf("revoke on B after the restart: %d %v", code, m)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	for {
		if _, _, err := c1.Read(rctx); err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("close after revocation: %v (%v), want 1008", got, err)
			}
			break
		}
	}
}
