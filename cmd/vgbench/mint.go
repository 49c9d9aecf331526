package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// mintResult is one mint-path measurement.
type mintResult struct {
	Name   string
	About  string
	PerSec float64
	OK, N  int64
	P50    time.Duration
	P99    time.Duration
	CPU    time.Duration // the server's
	Err    string
}

// hammer posts body to url from workers goroutines for d (or until n
// requests), keep-alive, and counts 200s.
func hammer(ctx context.Context, name, url, auth string, body func(i int64) string, workers int, d time.Duration, pid int) mintResult {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var n, ok atomic.Int64
	var lat samples
	var firstErr atomic.Pointer[string]
	end := time.Now().Add(d)
	cpu0 := treeStat(pid).CPU
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				i := n.Add(1)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body(i)))
				if auth != "" {
					req.Header.Set("Authorization", "Bearer "+auth)
				}
				req.Header.Set("Content-Type", "application/json")
				s := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
					lat.add(int64(time.Since(s)))
				} else {
					msg := fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)
					firstErr.CompareAndSwap(nil, &msg)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(t0)
	ds := lat.dist()
	r := mintResult{Name: name, OK: ok.Load(), N: n.Load(), PerSec: float64(ok.Load()) / el.Seconds(), P50: ds.P50, P99: ds.P99,
		CPU: treeStat(pid).CPU - cpu0}
	if e := firstErr.Load(); e != nil {
		r.Err = *e
	}
	return r
}

// redisServer is a redis-server child on a free loopback port, started
// like internal/store/redis/redistest does.
type redisServer struct {
	addr string
	t    *target
}

func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	rdir, _ := os.MkdirTemp(dir, "redis-")
	t, err := spawn("redis-server", addr, exec.Command(bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", rdir, "--daemonize", "no", "--loglevel", "warning"))
	if err != nil {
		return nil, err
	}
	return &redisServer{addr: addr, t: t}, nil
}

// redisBenchmarkGCRA runs redis-benchmark on the limiter's own script
// (scripts/gcra.lua, as EVAL) with distinct keys.
func redisBenchmarkGCRA(addr string, clients, n int) (float64, string, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return 0, "", err
	}
	script, err := os.ReadFile(filepath.Join(repoRoot(), "internal", "store", "redis", "scripts", "gcra.lua"))
	if err != nil {
		return 0, "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	// ARGV: interval 600000 µs (100 per minute), burst 100, cost 1.
	cmd := exec.Command(bin, "-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-r", "1000000", "-q",
		"EVAL", string(script), "1", "vg:bench:rate:__rand_int__", "600000", "100", "1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, string(out), err
	}
	m := regexp.MustCompile(`([0-9.]+) requests per second`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, string(out), fmt.Errorf("redis-benchmark: no rate in %q", out)
	}
	v, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	ver, _ := exec.Command(bin, "--version").Output()
	return v, strings.TrimSpace(string(ver)), nil
}

// allowRate calls st.Allow from workers goroutines for d on distinct keys:
// the limiter's own throughput through the Go client.
func allowRate(ctx context.Context, st store.Store, workers int, d time.Duration) float64 {
	var n atomic.Int64
	end := time.Now().Add(d)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				i := n.Add(1)
				if _, err := st.Allow(ctx, "bench:"+strconv.FormatInt(i%100000, 10), store.PerMinute(100)); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(t0).Seconds()
}

// exactness takes from one bucket of limit events per hour with workers
// goroutines, attempts times in all, and returns how many were granted.
func exactness(ctx context.Context, st store.Store, key string, limit, workers, attempts int) (granted int64, err error) {
	var left atomic.Int64
	left.Store(int64(attempts))
	var g atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	l := store.Limit{Rate: limit, Period: time.Hour, Burst: limit}
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				r, err := st.Allow(ctx, key, l)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if r.Allowed {
					g.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return g.Load(), *e
	}
	return g.Load(), nil
}

// openStores opens the three backends for the in-process checks.
func openStores(ctx context.Context, dir, redisURL string) (map[string]store.Store, func(), error) {
	sq, err := sqlite.Open(ctx, filepath.Join(dir, "exact.db"))
	if err != nil {
		return nil, nil, err
	}
	out := map[string]store.Store{"memory": memory.New(), "sqlite": sq}
	closers := []func(){func() { sq.Close() }}
	if redisURL != "" {
		rd, err := redis.Open(ctx, redisURL)
		if err != nil {
			return nil, nil, err
		}
		out["redis"] = rd
		closers = append(closers, func() { rd.Close() })
	}
	return out, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

// repoRoot is the module root (the directory holding go.mod).
func repoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p)
		}
	}
	wd, _ := os.Getwd()
	return wd
}

// firstLines is the first n lines of b.
func firstLines(b []byte, n int) string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}

// Names of the in-process durable mint rows; the goal row reads them.
const (
	mintDurableGrouped = "store calls of a governed mint, durable SQLite, group commit"
	mintDurableSerial  = "store calls of a governed mint, durable SQLite, one commit per write"
	mintFsyncRef       = "one fsync per mint: the disk's serial fsync rate"
)

// durableStoreMints makes, from workers goroutines for d, the store calls
// of a governed mint (internal/server's mint: the per-user mint rate, the
// session record and its audit entry) on a
// durable SQLite store at path that groups at most batch writes per
// commit. With batch 1 every write pays its own fsync: the reference group
// commit is measured against. In process, so no HTTP cost: an upper bound
// of what voicegate could mint over HTTP on that store.
func durableStoreMints(ctx context.Context, path string, batch, workers int, d time.Duration) (mintResult, error) {
	st, err := sqlite.Open(ctx, path, sqlite.WithDurable(true), sqlite.WithMaxBatch(batch), sqlite.WithPruneInterval(0))
	if err != nil {
		return mintResult{}, err
	}
	defer st.Close()
	var n, ok atomic.Int64
	var lat samples
	var firstErr atomic.Pointer[string]
	before := st.WriteStats()
	cpu0 := treeStatSelf()
	t0 := time.Now()
	end := t0.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				i := n.Add(1)
				s := time.Now()
				if err := storeMint(ctx, st, i); err != nil {
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					return
				}
				ok.Add(1)
				lat.add(int64(time.Since(s)))
			}
		})
	}
	wg.Wait()
	el := time.Since(t0)
	ds := lat.dist()
	after := st.WriteStats()
	r := mintResult{Name: mintDurableGrouped, OK: ok.Load(), N: n.Load(), PerSec: float64(ok.Load()) / el.Seconds(),
		P50: ds.P50, P99: ds.P99, CPU: treeStatSelf() - cpu0}
	if batch == 1 {
		r.Name = mintDurableSerial
	}
	perMint := 0.0
	if r.OK > 0 {
		perMint = float64(after.Commits-before.Commits) / float64(r.OK)
	}
	grouping := fmt.Sprintf("group commit (at most %d writes per commit)", batch)
	if batch == 1 {
		grouping = "`sqlite.WithMaxBatch(1)`: every write commits alone"
	}
	r.About = fmt.Sprintf("in process (no HTTP), %d goroutines, `sqlite.WithDurable(true)`, %s: %.2f commits (fsyncs) per mint; CPU is vgbench's own", workers, grouping, perMint)
	if e := firstErr.Load(); e != nil {
		r.Err = *e
	}
	return r, nil
}

// storeMint makes the store calls of governed mint i.
func storeMint(ctx context.Context, st *sqlite.Store, i int64) error {
	user := "dm" + strconv.FormatInt(i, 10)
	if _, err := st.Allow(ctx, "rl:mint:user:"+user, store.PerMinute(10)); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	sess := &store.Session{ID: "vgs_" + randHex(12), TokenHash: randHex(32), TokenID: randHex(4), User: user, Tier: "governed",
		Model: "gpt-realtime", Config: []byte(`{"type":"realtime","model":"gpt-realtime"}`),
		CreatedAt: now, ExpiresAt: now.Add(time.Minute), State: store.StateMinted}
	if err := st.CreateSession(ctx, sess); err != nil {
		return err
	}
	return st.AppendAudit(ctx, store.AuditEntry{Kind: "mint", SessionID: sess.ID, User: user, Tier: sess.Tier,
		Detail: map[string]any{"token_id": sess.TokenID, "model": sess.Model, "by": "admin", "expires_at": sess.ExpiresAt.Format(time.RFC3339)}})
}

// fsyncRate measures how many 4 KiB append+fsync rounds one writer makes
// per second on dir's file system: the most mints per second any store
// that fsyncs once per mint can acknowledge (SQLite has one writer, so its
// fsyncs never overlap).
func fsyncRate(ctx context.Context, dir string, d time.Duration) (mintResult, error) {
	f, err := os.CreateTemp(dir, "fsync-*.bin")
	if err != nil {
		return mintResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	var lat samples
	n := int64(0)
	t0 := time.Now()
	for time.Since(t0) < d && ctx.Err() == nil {
		s := time.Now()
		if _, err := f.Write(page); err != nil {
			return mintResult{}, err
		}
		if err := f.Sync(); err != nil {
			return mintResult{}, err
		}
		lat.add(int64(time.Since(s)))
		n++
	}
	el := time.Since(t0)
	ds := lat.dist()
	return mintResult{Name: mintFsyncRef, OK: n, N: n, PerSec: float64(n) / el.Seconds(), P50: ds.P50, P99: ds.P99,
		About: "one writer appending 4 KiB and calling fsync(2) in a loop, on the file system of the durable databases: the ceiling of any one-fsync-per-mint store"}, nil
}
