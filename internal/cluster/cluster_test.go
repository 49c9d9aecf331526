package cluster

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
)

// TestMintOnAConnectOnBRevokeOnC: a token minted on A connects and runs a
// turn on B; revoking it on C closes B's socket with 1008 within a second.
func TestMintOnAConnectOnBRevokeOnC(t *testing.T) {
	url, _, _ := redistest.Start(t)
	up, key, _ := simulator(t)
	a := startInstance(t, "a", url, up, key)
	b := startInstance(t, "b", url, up, key)
	c := startInstance(t, "c", url, up, key)

	tok, id := mint(t, a, "alice")
	conn := connect(t, b, tok)
	if rid := turn(t, conn, "hello from B"); rid == "" {
		t.Fatal("no response id")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if code, m := do(t, "DELETE", c.base+"/voicegate/v1/sessions/"+id, ""); code != 200 {
		t.Fatalf("revoke on C: %d %v", code, m)
	}
	for {
		_, _, err := conn.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("close status %v (%v), want 1008", got, err)
			}
			break
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("revocation on C closed B's session after %v, want ≤ 1s", d)
	} else {
		t.Logf("revoke on C → close on B in %v", d)
	}
}

// TestSIGKILLFreesLease: an instance killed while holding a live session
// leaves a tok:<session> lease that expires within the configured lease
// TTL (--lease-ttl).
func TestSIGKILLFreesLease(t *testing.T) {
	const ttl = 2 * time.Second
	url, _, _ := redistest.Start(t)
	up, key, _ := simulator(t)
	a := startInstance(t, "a", url, up, key, "--lease-ttl", ttl.String())
	b := startInstance(t, "b", url, up, key, "--lease-ttl", ttl.String())
	rs, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()

	tok, id := mint(t, a, "bob")
	connect(t, b, tok)
	n, err := rs.LeaseCount(context.Background(), "tok:"+id)
	if err != nil || n != 1 {
		t.Fatalf("lease count while live = %d, %v; want 1", n, err)
	}
	b.kill(t)
	killed := time.Now()
	// Redis expires the lease on its own clock: allow for the polling
	// interval and one round trip beyond the TTL.
	eventually(t, ttl+500*time.Millisecond, "lease freed after SIGKILL", func() bool {
		n, err := rs.LeaseCount(context.Background(), "tok:"+id)
		return err == nil && n == 0
	})
	freed := time.Since(killed)
	t.Logf("lease freed %v after SIGKILL (lease TTL %v)", freed, ttl)
	// The token connects again elsewhere once the lease is gone.
	connect(t, a, tok)
}

// TestRedisDownFailsClosed: with Redis stopped, mint answers 503 in the
// OpenAI error envelope and /readyz fails; both recover after restart.
func TestRedisDownFailsClosed(t *testing.T) {
	url, stop, restart := redistest.Start(t)
	up, key, _ := simulator(t)
	a := startInstance(t, "a", url, up, key)
	stop()
	code, m := do(t, "POST", a.base+"/v1/realtime/client_secrets", `{"user":"carol"}`)
	e, _ := m["error"].(map[string]any)
	if code != http.StatusServiceUnavailable || e == nil || e["message"] == nil || e["type"] == nil {
		t.Fatalf("mint with Redis down = %d %v; want 503 with an OpenAI error envelope", code, m)
	}
	if strings.Contains(strings.ToLower(e["message"].(string)), "sk-") {
		t.Fatalf("error leaks a key: %v", e)
	}
	if resp, err := http.Get(a.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	restart()
	eventually(t, 10*time.Second, "/readyz after restart", func() bool {
		resp, err := http.Get(a.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	mint(t, a, "carol")
}

// TestRedisRestartMidSession: live sessions on two instances survive Redis
// going down and coming back empty; turns made while it was down are spooled
// and replayed, so afterwards the gateway ledger in Redis holds exactly the
// simulator's responses from the outage on — none lost, none doubled.
// (Entries written before the outage are lost with the restarted Redis's
// memory by design of the test: redistest runs with --appendonly no.)
func TestRedisRestartMidSession(t *testing.T) {
	testRedisRestart(t)
}

// TestRedisRestartMidSessionWithBudgets is the same with user budgets on,
// so every response first reserves budget in Redis: during the outage the
// instances grant from local accounting, and afterwards each user's day
// account in Redis has spent exactly the cost of that user's entries in
// the ledger (the outage responses charged once from the spool, the later
// ones settled), with nothing left reserved.
func TestRedisRestartMidSessionWithBudgets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "voicegate.yaml")
	if err := os.WriteFile(p, []byte("tiers:\n  default:\n    budget:\n      user_day_usd: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, rs, ins := testRedisRestart(t, "--config", p)
	for _, in := range ins {
		if logs := in.logs.String(); !strings.Contains(logs, "granting responses from local accounting") ||
			!strings.Contains(logs, "reservations are shared again") {
			t.Errorf("instance %s did not log both local-accounting transitions:\n%s", in.name, logs)
		}
	}
	cost := map[string]int64{}
	for _, e := range got {
		cost[e.User] += e.CostNanoUSD
	}
	for _, user := range []string{"dave", "erin"} {
		key := "user:day:" + user + ":" + time.Now().UTC().Format("2006-01-02")
		var spent, reserved int64
		eventually(t, 5*time.Second, "budget of "+user+" settled", func() bool {
			var err error
			spent, reserved, err = rs.Spent(context.Background(), key)
			return err == nil && spent == cost[user] && reserved == 0
		})
		if cost[user] == 0 {
			t.Fatalf("no cost recorded for %s", user)
		}
		t.Logf("%s: spent %d = ledger cost %d, reserved %d", user, spent, cost[user], reserved)
	}
}

// testRedisRestart runs the restart scenario and returns the gateway's
// ledger entries of both sessions from Redis, an open Redis store and the
// two instances.
func testRedisRestart(t *testing.T, extra ...string) ([]store.LedgerEntry, *redis.Store, []*instance) {
	url, stop, restart := redistest.Start(t)
	up, key, simSrv := simulator(t)
	a := startInstance(t, "a", url, up, key, extra...)
	b := startInstance(t, "b", url, up, key, extra...)
	tokA, idA := mint(t, a, "dave")
	tokB, idB := mint(t, b, "erin")
	ca := connect(t, b, tokA)
	cb := connect(t, a, tokB)
	rs, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	turn(t, ca, "before")
	turn(t, cb, "before")
	// The relay may record usage just after relaying response.done: wait
	// until both pre-outage entries are in Redis, so the restart (which
	// empties Redis) deterministically forgets them. RecordUsage writes the
	// per-session hash first and the user index after it; a stop between
	// the two fails the call, which the spool then keeps and replays into
	// the new Redis (correctly: the instance never learned it was stored).
	// So wait for the user index, the last write, too.
	var before int
	eventually(t, 5*time.Second, "pre-outage entries recorded", func() bool {
		if before = len(simSrv.Ledger()); before != 2 {
			return false
		}
		n := 0
		for _, f := range []store.LedgerFilter{{SessionID: idA}, {SessionID: idB}, {User: "dave"}, {User: "erin"}} {
			es, err := rs.LedgerEntries(context.Background(), f)
			if err != nil {
				return false
			}
			n += len(es)
		}
		return n == 4
	})
	time.Sleep(100 * time.Millisecond) // the reply of that last write reaches the instance

	stop()
	want := map[string]bool{}
	want[turn(t, ca, "during outage one")] = true
	want[turn(t, cb, "during outage two")] = true
	restart()
	want[turn(t, ca, "after restart")] = true
	want[turn(t, cb, "after restart")] = true

	// The simulator too may append to its ledger just after response.done.
	simUsage := map[string]int64{}
	eventually(t, 5*time.Second, "simulator ledger complete", func() bool {
		clear(simUsage)
		for _, e := range simSrv.Ledger() {
			if want[e.ResponseID] {
				simUsage[e.ResponseID] = e.Usage.TotalTokens
			}
		}
		return len(simUsage) == len(want)
	})
	if n := len(simSrv.Ledger()); n != before+len(want) {
		t.Fatalf("simulator ledger has %d entries, want %d", n, before+len(want))
	}
	var got []store.LedgerEntry
	eventually(t, 10*time.Second, "spool replayed into Redis", func() bool {
		got = nil
		for _, id := range []string{idA, idB} {
			es, err := rs.LedgerEntries(context.Background(), store.LedgerFilter{SessionID: id})
			if err != nil {
				return false
			}
			got = append(got, es...)
		}
		return len(got) >= len(want)
	})
	time.Sleep(200 * time.Millisecond) // a double would arrive by now
	got = nil
	for _, id := range []string{idA, idB} {
		es, _ := rs.LedgerEntries(context.Background(), store.LedgerFilter{SessionID: id})
		got = append(got, es...)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ResponseID)
		if tok, ok := simUsage[e.ResponseID]; !ok || tok != e.Usage.TotalTokens {
			t.Errorf("gateway entry %s (%d tokens) not in simulator ledger (%d, %v)", e.ResponseID, e.Usage.TotalTokens, tok, ok)
		}
	}
	sort.Strings(ids)
	if len(got) != len(want) {
		t.Fatalf("gateway ledger %v, want exactly the %d simulator responses", ids, len(want))
	}
	return got, rs, []*instance{a, b}
}
