// Package soak holds the compressed-time soak test of the whole gateway:
// hundreds of concurrent voice sessions through the real HTTP server,
// relay, governor and SQLite store to the simulator, with attackers mixed
// in. It runs only when VOICEGATE_SOAK names the number of sessions:
//
//	VOICEGATE_SOAK=300 go test -run TestSoak -v -timeout 20m ./internal/soak
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/relay"
	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

const (
	serverKey = "sk-soak-server-key-0123456789"
	adminKey  = "soak-admin-key-0123456789abcdef0123456789"
	turns     = 3 // text turns per legitimate session
)

// rig is one gateway (HTTP server, relay, governor, SQLite) in front of
// the simulator, all in this process.
type rig struct {
	base   string
	st     *sqlite.Store
	dbPath string
	sim    *sim.Server
	rl     *relay.Relay
}

func newRig(t *testing.T, dir string) *rig {
	t.Helper()
	simSrv := sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast})
	up := httptest.NewServer(simSrv.Handler())
	t.Cleanup(up.Close)

	ctx := context.Background()
	dbPath := filepath.Join(dir, "soak.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.Store = "sqlite:" + dbPath
	def := cfg.Tiers["default"]
	def.MaxConcurrent = 0 // one user per session anyway; the instance is the cap under test
	cfg.Tiers["default"] = def
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tiers, err := cfg.PolicyTiers()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if p := os.Getenv("VOICEGATE_SOAK_LOG"); p != "" { // the gateway's log, to look into a failure
		lf, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lf.Close() })
		log = slog.New(slog.NewJSONHandler(lf, nil))
	}
	gov := &govern.Governor{Store: st, Tiers: tiers, Logger: log, Instance: "soak"}
	rl := &relay.Relay{Upstream: up.URL + "/v1", APIKey: serverKey, Governor: gov, Logger: log, Instance: "soak",
		PingInterval: time.Second, PingTimeout: 5 * time.Second}
	srv := server.NewServer(server.Deps{Config: cfg, Store: st, Relay: rl, Govern: gov, Logger: log, Instance: "soak"})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(sctx, ln, srv, server.ServeOptions{Relay: rl, ShutdownTimeout: 5 * time.Second})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &rig{base: "http://" + ln.Addr().String(), st: st, dbPath: dbPath, sim: simSrv, rl: rl}
}

func (r *rig) mint(ctx context.Context, user string) (string, error) {
	body := `{"user":"` + user + `","session":{"type":"realtime","model":"gpt-realtime","output_modalities":["text"]}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", r.base+"/v1/realtime/client_secrets", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("mint %s: %d %v", user, resp.StatusCode, err)
	}
	return out.Value, nil
}

func (r *rig) dial(ctx context.Context, tok, query string) (*websocket.Conn, int, error) {
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.base, "http")+"/v1/realtime?model=gpt-realtime"+query,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode, err
		}
		return nil, 0, err
	}
	c.SetReadLimit(1 << 20)
	return c, http.StatusSwitchingProtocols, nil
}

// reader reads a client connection all along, as a browser does, so the
// gateway's pings are answered even while the client waits.
type reader struct {
	frames chan []byte
	err    error // set before frames is closed
}

func read(ctx context.Context, c *websocket.Conn) *reader {
	rd := &reader{frames: make(chan []byte, 64)}
	go func() { // owner: the session; ends when the connection does
		defer close(rd.frames)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				rd.err = err
				return
			}
			rd.frames <- b
		}
	}()
	return rd
}

// until reads until an event of type typ (or fails).
func (rd *reader) until(typ string) error {
	for b := range rd.frames {
		if t, _ := realtime.EventType(b); t == typ {
			return nil
		}
	}
	return rd.err
}

// figures are what the soak reports.
type figures struct {
	sessions, turnsDone, attacks          int64
	throttled, queryRefused, frozenClosed int64
	peakHeapMB, peakRSSMB                 float64
	dbBeforeKB, dbAfterKB                 int64
	dbPath                                string
	auditRows, ledgerGW, ledgerSim        int
	goroutinesBase, goroutinesAfter       int
	elapsed                               time.Duration
	peakLive                              int
	heapAfterRound                        []float64 // MiB in use after each round, after a GC
}

func TestSoak(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VOICEGATE_SOAK"))
	rounds, _ := strconv.Atoi(os.Getenv("VOICEGATE_SOAK_ROUNDS"))
	rounds = max(rounds, 3)
	attackers := max(n/10, 1) // of each kind, per round
	if n <= 0 {
		t.Skip("set VOICEGATE_SOAK=<sessions> to run the soak (README: VOICEGATE_SOAK=300)")
	}
	start := time.Now()
	var f figures
	dir := t.TempDir() // removed last, after the check below
	f.goroutinesBase = runtime.NumGoroutine()
	// Registered first, so it runs last: after the rig is shut down.
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > f.goroutinesBase && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		f.goroutinesAfter = runtime.NumGoroutine()
		// The store is closed: its WAL is checkpointed into the file.
		f.dbAfterKB = dbSize(f.dbPath)
		t.Logf("soak: database %d KiB → %d KiB (+%d KiB), %d audit rows", f.dbBeforeKB, f.dbAfterKB, f.dbAfterKB-f.dbBeforeKB, f.auditRows)
		if grown, limit := f.dbAfterKB-f.dbBeforeKB, int64(f.sessions)*8+2048; grown > limit {
			t.Errorf("database grew by %d KiB, want at most %d", grown, limit)
		}
		t.Logf("soak: goroutines %d before, %d after shutdown; %v elapsed", f.goroutinesBase, f.goroutinesAfter, f.elapsed.Round(time.Second))
		if f.goroutinesAfter > f.goroutinesBase {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines not back to baseline:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	r := newRig(t, dir)
	f.dbPath, f.dbBeforeKB = r.dbPath, dbSize(r.dbPath)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	stopSampling := sync.OnceFunc(sampleMemory(&f, r.rl))
	defer stopSampling()

	var wg sync.WaitGroup
	var fail atomic.Value
	failf := func(format string, a ...any) { fail.CompareAndSwap(nil, fmt.Sprintf(format, a...)) }

	for k := range rounds {
		// Legitimate sessions: n concurrent, each a few text turns.
		ready, allIn := make(chan struct{}), make(chan struct{})
		var arrived atomic.Int64
		arrive := func() {
			if arrived.Add(1) == int64(n) {
				close(allIn)
			}
		}
		for i := range n {
			wg.Go(func() {
				var once sync.Once
				defer once.Do(arrive) // a session that fails does not hold the others
				tok, err := r.mint(ctx, fmt.Sprintf("user-%d-%d", k, i))
				if err != nil {
					failf("%v", err)
					return
				}
				<-ready // all connect together: n live at once
				c, _, err := r.dial(ctx, tok, "")
				if err != nil {
					failf("dial %d: %v", i, err)
					return
				}
				defer c.CloseNow()
				rd := read(ctx, c)
				defer func() {
					c.CloseNow()
					for range rd.frames {
					}
				}()
				if err := rd.until("session.created"); err != nil {
					failf("session %d: %v", i, err)
					return
				}
				atomic.AddInt64(&f.sessions, 1)
				once.Do(arrive)
				select { // every session of the round is live before any turn
				case <-allIn:
				case <-ctx.Done():
				}
				for range turns {
					item := `{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"Tell me about the sea"}]}}`
					err := c.Write(ctx, websocket.MessageText, []byte(item))
					if err == nil {
						err = c.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create"}`))
					}
					if err == nil {
						err = rd.until("response.done")
					}
					if err != nil {
						failf("turn of session %d: %v", i, err)
						return
					}
					atomic.AddInt64(&f.turnsDone, 1)
				}
				c.Close(websocket.StatusNormalClosure, "")
			})
		}

		// Attackers, about one for every ten sessions of each kind.
		for i := range attackers {
			// A token holder flooding refused events with 10 KB types.
			wg.Go(func() {
				tok, err := r.mint(ctx, fmt.Sprintf("flooder-%d-%d", k, i))
				if err != nil {
					failf("%v", err)
					return
				}
				<-ready
				c, _, err := r.dial(ctx, tok, "")
				if err != nil {
					failf("flooder dial: %v", err)
					return
				}
				defer c.CloseNow()
				rd := read(ctx, c) // drains the refusals
				defer func() {
					c.CloseNow()
					for range rd.frames {
					}
				}()
				frame := []byte(`{"type":"` + strings.Repeat("x", 10_000) + `"}`)
				for range 500 {
					if c.Write(ctx, websocket.MessageText, frame) != nil {
						break
					}
					atomic.AddInt64(&f.attacks, 1)
				}
				c.Close(websocket.StatusNormalClosure, "")
			})
			// Bogus tokens and failed logins with long paths.
			wg.Go(func() {
				<-ready
				for j := range 100 {
					_, code, _ := r.dial(ctx, fmt.Sprintf("ek_vg_bogus%d_%d_%d", k, i, j), "")
					atomic.AddInt64(&f.attacks, 1)
					if code == http.StatusTooManyRequests {
						atomic.AddInt64(&f.throttled, 1)
					}
					req, _ := http.NewRequestWithContext(ctx, "GET", r.base+"/voicegate/v1/sessions/"+strings.Repeat("A", 32<<10), nil)
					req.Header.Set("Authorization", "Bearer wrong")
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
						atomic.AddInt64(&f.attacks, 1)
						if resp.StatusCode == http.StatusTooManyRequests {
							atomic.AddInt64(&f.throttled, 1)
						}
					}
				}
			})
			// A sideband hijack attempt, and a frozen client that never reads.
			wg.Go(func() {
				tok, err := r.mint(ctx, fmt.Sprintf("frozen-%d-%d", k, i))
				if err != nil {
					failf("%v", err)
					return
				}
				<-ready
				if _, code, _ := r.dial(ctx, tok, "&call_id=rtc_victim"); code == http.StatusBadRequest {
					atomic.AddInt64(&f.queryRefused, 1)
				}
				atomic.AddInt64(&f.attacks, 1)
				c, _, err := r.dial(ctx, tok, "")
				if err != nil {
					failf("frozen dial: %v", err)
					return
				}
				defer c.CloseNow()
				atomic.AddInt64(&f.attacks, 1)
				// Never read: the gateway must find out by its pings and end
				// the session; the token's one-connection lease is then free.
				for {
					c2, code, err := r.dial(ctx, tok, "")
					if err == nil {
						atomic.AddInt64(&f.frozenClosed, 1)
						c2.Close(websocket.StatusNormalClosure, "")
						return
					}
					if code != http.StatusConflict || ctx.Err() != nil {
						failf("reconnect of a frozen client's token: %d %v", code, err)
						return
					}
					select { // the ping interval paces the retries
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			})
		}
		close(ready)
		wg.Wait()
		if v := fail.Load(); v != nil {
			t.Fatal(v)
		}
		// Every session is over once the relay holds none.
		for r.rl.LiveCount() > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		f.heapAfterRound = append(f.heapAfterRound, float64(m.HeapInuse)/(1<<20))
	}
	stopSampling()

	ledger, err := r.st.LedgerEntries(ctx, store.LedgerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	f.ledgerGW, f.ledgerSim = len(ledger), len(r.sim.Ledger())
	audit, err := r.st.AuditEntries(ctx, store.AuditFilter{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	f.auditRows = len(audit)
	http.DefaultClient.CloseIdleConnections()
	f.elapsed = time.Since(start)

	// Checks.
	if f.sessions != int64(rounds*n) || f.turnsDone != int64(rounds*n*turns) {
		t.Errorf("sessions %d of %d, turns %d of %d", f.sessions, rounds*n, f.turnsDone, rounds*n*turns)
	}
	if f.ledgerGW != f.ledgerSim || f.ledgerGW != rounds*n*turns {
		t.Errorf("ledger: gateway %d entries, simulator %d, want %d each", f.ledgerGW, f.ledgerSim, rounds*n*turns)
	}
	if f.frozenClosed != int64(rounds*attackers) || f.queryRefused != int64(rounds*attackers) {
		t.Errorf("frozen clients closed %d, call_id refused %d, want %d each", f.frozenClosed, f.queryRefused, rounds*attackers)
	}
	// Memory flat: what is in use after the last round is about what was
	// in use after the first.
	if first, last := f.heapAfterRound[0], f.heapAfterRound[len(f.heapAfterRound)-1]; last > first*1.5+8 {
		t.Errorf("heap in use after each round (MiB): %.1f — growing", f.heapAfterRound)
	}
	// Per session: mint, connect, disconnect; per flooder at most the
	// refusal burst and a summary; failed logins throttled after 20.
	if limit := rounds * (n*3 + attackers*(3+govern.DefaultRefusalAuditBurst+2) + attackers*6 + 200); f.auditRows > limit {
		t.Errorf("%d audit rows, want at most %d", f.auditRows, limit)
	}

	t.Logf("soak: %d sessions (peak %d live at once), %d turns, %d attacks (%d throttled with 429, %d call_id refused, %d frozen clients closed by ping)",
		f.sessions, f.peakLive, f.turnsDone, f.attacks, f.throttled, f.queryRefused, f.frozenClosed)
	t.Logf("soak: peak heap %.1f MiB, peak RSS %.1f MiB (gateway, simulator and clients in one process)", f.peakHeapMB, f.peakRSSMB)
	t.Logf("soak: heap in use after each round, after a GC (MiB): %.1f", f.heapAfterRound)
	t.Logf("soak: ledger %d entries, simulator %d: %d lost", f.ledgerGW, f.ledgerSim, f.ledgerSim-f.ledgerGW)
}

// sampleMemory records the peak heap and RSS until the returned stop is
// called.
func sampleMemory(f *figures, rl *relay.Relay) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			f.peakHeapMB = max(f.peakHeapMB, float64(m.HeapInuse)/(1<<20))
			f.peakLive = max(f.peakLive, rl.LiveCount())
			select {
			case <-done:
				f.peakRSSMB = float64(vmHWM()) / 1024
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}

// vmHWM is the process's peak resident set in KiB (Linux), 0 elsewhere.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// dbSize is the size of the SQLite database with its WAL, in KiB.
func dbSize(path string) int64 {
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		} else if !errors.Is(err, os.ErrNotExist) {
			return -1
		}
	}
	return total / 1024
}
