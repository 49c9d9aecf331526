package money

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/voicegate/voicegate/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

const (
	adminKey = "vg-admin-money-suite-key-0123456789abcdef"
	simKey   = "sk-sim-money-suite"
	model    = "gpt-realtime"
)

var voicegateBin string

func TestMain(m *testing.M) { testenv.MainWithVoicegate(m, &voicegateBin) }

// Store kinds every shape runs on.
const (
	onSQLite = "sqlite" // one instance
	onRedis  = "redis"  // two instances sharing one redis-server
)

// forStores runs fn as a parallel subtest per store kind.
func forStores(t *testing.T, fn func(t *testing.T, kind string)) {
	t.Helper()
	for _, kind := range []string{onSQLite, onRedis} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, kind)
		})
	}
}

// rigOptions configure one rig.
type rigOptions struct {
	// realtime paces the simulator's output in real time (default: fast).
	realtime bool
	// userDayUSD is the default tier's user_day_usd (0 means 5).
	userDayUSD float64
	// leaseTTL is --lease-ttl (0 means the gateway's default).
	leaseTTL time.Duration
}

// rig is one simulator, one store and the gateway instances in front of
// them, private to one test.
type rig struct {
	t      *testing.T
	kind   string
	sim    *sim.Server
	up     string // the simulator's /v1 URL
	store  string // --store value
	cfg    string // --config file
	opts   rigOptions
	gws    []*gateway
	st     store.Store // the same store, opened by the test for reading
	userDy float64
}

// newRig starts a simulator, the store and the gateway instances (one on
// SQLite, two on Redis).
func newRig(t *testing.T, kind string, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, kind: kind, opts: o, userDy: o.userDayUSD}
	if r.userDy == 0 {
		r.userDy = 5
	}
	pace := sim.PaceFast
	if o.realtime {
		pace = sim.PaceRealtime
	}
	r.sim = sim.New(sim.Options{APIKeys: []string{simKey}, Pace: pace})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: r.sim.Handler()}
	go hs.Serve(ln) // owner: rig; exits on Close in cleanup
	t.Cleanup(func() { hs.Close(); r.sim.Close() })
	r.up = "http://" + ln.Addr().String() + "/v1"

	dir := t.TempDir()
	r.cfg = filepath.Join(dir, "voicegate.yaml")
	y := "tiers:\n  default:\n    budget:\n      user_day_usd: " + strconv.FormatFloat(r.userDy, 'f', -1, 64) + "\n"
	if err := os.WriteFile(r.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 1
	switch kind {
	case onSQLite:
		r.store = "sqlite:" + filepath.Join(dir, "voicegate.db")
	case onRedis:
		url, _, _ := redistest.Start(t)
		r.store = url
		n = 2
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	for i := range n {
		r.gws = append(r.gws, r.startGateway(string(rune('a'+i)), dir))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch kind {
	case onSQLite:
		s, err := sqlite.Open(ctx, strings.TrimPrefix(r.store, "sqlite:"))
		if err != nil {
			t.Fatalf("open the gateway's sqlite store: %v", err)
		}
		r.st = s
	case onRedis:
		s, err := redis.Open(ctx, r.store)
		if err != nil {
			t.Fatalf("open the gateway's redis store: %v", err)
		}
		r.st = s
	}
	t.Cleanup(func() { r.st.Close() })
	return r
}

// gw returns the instance for the i-th session: sessions are spread over
// the instances.
func (r *rig) gw(i int) *gateway { return r.gws[i%len(r.gws)] }

// gateway is one `voicegate serve` process; it can be killed and
// restarted with the same arguments (same --instance, --spool-dir, store).
type gateway struct {
	t    *testing.T
	name string
	args []string
	base string
	logs *syncBuf

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func (r *rig) startGateway(name, dir string) *gateway {
	r.t.Helper()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--store", r.store, "--admin-key", adminKey,
		"--upstream", r.up, "--instance", name, "--log-format", "text", "--config", r.cfg}
	if r.kind == onRedis {
		args = append(args, "--spool-dir", filepath.Join(dir, "spool-"+name))
	}
	if r.opts.leaseTTL > 0 {
		args = append(args, "--lease-ttl", r.opts.leaseTTL.String())
	}
	g := &gateway{t: r.t, name: name, args: args, logs: &syncBuf{}}
	g.start()
	r.t.Cleanup(func() {
		g.stop()
		if r.t.Failed() {
			r.t.Logf("gateway %s (%s) logs:\n%s", name, r.kind, tail(g.logs.String(), 60))
		}
	})
	return g
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// start runs the process and waits for it to print its URL.
func (g *gateway) start() {
	t := g.t
	t.Helper()
	cmd := exec.Command(voicegateBin, g.args...)
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+simKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = g.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	urlc := make(chan string, 1)
	go func() { // owner: gateway; exits when the process closes stdout
		re := regexp.MustCompile(`https?://127\.0\.0\.1:\d+`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			g.logs.Write([]byte(sc.Text() + "\n"))
			if m := re.FindString(sc.Text()); m != "" {
				select {
				case urlc <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(done) }() // owner: gateway; exits with the process
	select {
	case u := <-urlc:
		g.mu.Lock()
		g.base = u
		g.mu.Unlock()
	case <-done:
		t.Fatalf("gateway %s exited at start:\n%s", g.name, g.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway %s printed no URL:\n%s", g.name, g.logs.String())
	}
}

// url is the instance's base URL (it changes on restart).
func (g *gateway) url() string { g.mu.Lock(); defer g.mu.Unlock(); return g.base }

// kill SIGKILLs the process and waits for it to die.
func (g *gateway) kill() {
	g.t.Helper()
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		g.t.Fatalf("kill gateway %s: %v", g.name, err)
	}
	<-done
}

// restart starts the same binary with the same arguments again.
func (g *gateway) restart() {
	g.t.Helper()
	g.logs.Write([]byte("----- restart -----\n"))
	g.start()
}

// stop ends the process with SIGTERM (SIGKILL after 10 s).
func (g *gateway) stop() {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// api calls the admin HTTP API of g and decodes the JSON answer.
func (g *gateway) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, g.url()+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s on gateway %s: %v", method, path, g.name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	if out == nil {
		out = map[string]any{"_body": string(data)}
	}
	return resp.StatusCode, out
}

// sessionState is the state of session id in the session API of g ("" when
// it cannot be read, which never counts as settled).
func (g *gateway) sessionState(t *testing.T, id string) string {
	t.Helper()
	code, m := g.api(t, "GET", "/voicegate/v1/sessions/"+id, nil)
	if code != http.StatusOK {
		return ""
	}
	s, _ := m["state"].(string)
	return s
}

// gone reports whether a session state read from the API is known and not
// live.
func gone(state string) bool { return state != "" && state != "live" }

// minted is one session minted for a test.
type minted struct {
	tok    string
	id     string
	user   string
	budget float64 // session budget in USD; 0 = none
	on     *gateway
}

// mintReq is the body of a client_secrets mint.
type mintReq struct {
	user    string
	session map[string]any // GA session config; nil means {"type":"realtime","model":…}
	budget  float64        // limits.budget_usd; 0 = none
}

// mint mints a session on g with the admin key.
func (r *rig) mint(t *testing.T, g *gateway, m mintReq) minted {
	t.Helper()
	sess := m.session
	if sess == nil {
		sess = map[string]any{}
	}
	if _, ok := sess["type"]; !ok {
		sess["type"] = "realtime"
	}
	if _, ok := sess["model"]; !ok {
		sess["model"] = model
	}
	body := map[string]any{"session": sess, "user": m.user}
	if m.budget > 0 {
		body["limits"] = map[string]any{"budget_usd": m.budget}
	}
	code, out := g.api(t, "POST", "/v1/realtime/client_secrets", body)
	if code != http.StatusOK {
		t.Fatalf("mint on gateway %s: %d %v", g.name, code, out)
	}
	tok, _ := out["value"].(string)
	vg, _ := out["voicegate"].(map[string]any)
	id, _ := vg["session_id"].(string)
	if tok == "" || id == "" {
		t.Fatalf("mint on gateway %s: no token or session id in %v", g.name, out)
	}
	return minted{tok: tok, id: id, user: m.user, budget: m.budget, on: g}
}

// today is the UTC day of the user:day accounts.
func today() string { return time.Now().UTC().Format("2006-01-02") }

// sessionAccount and userDayAccount are budget account keys (see
// govern.Accounts).
func sessionAccount(id string) string   { return "session:" + id }
func userDayAccount(user string) string { return "user:day:" + user + ":" + today() }

// spent reads an account of the gateway's store.
func (r *rig) spent(t *testing.T, account string) (spent, reserved int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, res, err := r.st.Spent(ctx, account)
	if err != nil {
		t.Fatalf("Spent(%s): %v", account, err)
	}
	return s, res
}

// gwLedger reads the whole gateway ledger of the rig.
func (r *rig) gwLedger(t *testing.T) []store.LedgerEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := r.st.LedgerEntries(ctx, store.LedgerFilter{})
	if err != nil {
		t.Fatalf("gateway ledger: %v", err)
	}
	return es
}
