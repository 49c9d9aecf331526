// Command vgbench measures voicegate's relay and mint path side by side
// with reference relays, on loopback, in one run, and writes BENCHMARKS.md.
//
//	go run ./cmd/vgbench            # full run (≈15–25 min), writes BENCHMARKS.md
//	go run ./cmd/vgbench --short    # smoke run (< 2 min), writes to a temp file
//
// Targets, each in front of the same in-process simulator (internal/sim
// with its latency probe): direct, a Go TCP splice, nginx, a Node ws relay
// (forwarding; JSON.parse of every frame), voicegate pass-through and
// voicegate governed (SQLite store). Every load loop is bounded in count
// and time; everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "splice" {
		if err := spliceMain(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "splice:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the flags
		}
		fmt.Fprintln(os.Stderr, "vgbench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	short   bool
	out     string
	levels  []int
	dur     time.Duration
	noMint  bool
	noPerf  bool
	targets string
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vgbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.BoolVar(&o.short, "short", false, "smoke run under two minutes (tiny loads; figures are not meaningful)")
	fs.StringVar(&o.out, "out", "", "report path (default BENCHMARKS.md at the module root; --short: a temp file)")
	levels := fs.String("levels", "", "talk session counts for the capacity search, comma-separated (default 50,100,200,400; --short: 8)")
	fs.DurationVar(&o.dur, "dur", 0, "measured time per run (default 12s; --short: 2s)")
	fs.BoolVar(&o.noMint, "no-mint", false, "skip the mint-path benchmarks")
	fs.BoolVar(&o.noPerf, "no-perf", false, "skip perf profiles of voicegate")
	fs.StringVar(&o.targets, "targets", "", "comma-separated subset of targets (default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.levels = []int{50, 100, 200, 400}
	if o.short {
		o.levels = []int{8}
	}
	if *levels != "" {
		o.levels = nil
		for _, f := range strings.Split(*levels, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
				return fmt.Errorf("--levels: bad count %q", f)
			}
			o.levels = append(o.levels, n)
		}
	}
	if o.short {
		o.noPerf = true // perf record needs seconds of load to say anything
	}
	if o.dur == 0 {
		o.dur = 12 * time.Second
		if o.short {
			o.dur = 1500 * time.Millisecond
		}
	}
	repo := repoRoot()
	if o.out == "" {
		o.out = filepath.Join(repo, "BENCHMARKS.md")
		if o.short {
			o.out = filepath.Join(os.TempDir(), "vgbench-short.md")
		}
	}
	dir, err := os.MkdirTemp("", "vgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rep := &report{opts: o, start: time.Now(), loadBefore: loadavg(), args: args}
	rep.machine()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "vgbench: "+format+"\n", a...) }

	logf("building cmd/voicegate")
	bin, err := buildVoicegate(ctx, repo, dir)
	if err != nil {
		return err
	}
	e := &env{dir: dir, repo: repo, simKey: "sk-bench-" + randHex(8), adminKey: randHex(24), vgBin: bin, stderr: stderr}

	if err := relayBench(ctx, e, o, rep, logf); err != nil {
		return err
	}
	if !o.noMint {
		if err := mintBench(ctx, e, o, rep, logf); err != nil {
			return err
		}
	}
	rep.loadAfter = loadavg()
	rep.end = time.Now()
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s in %s", o.out, time.Since(rep.start).Round(time.Second))
	if o.short {
		return rep.smokeCheck()
	}
	return nil
}

// smokeCheck fails a short run whose sessions did not connect or relayed
// nothing, so a broken harness or target cannot pass unnoticed; figures
// are not judged (the loads are tiny and the machine is shared).
func (r *report) smokeCheck() error {
	var bad []string
	for _, x := range r.results {
		switch {
		case x.Connected < x.Sessions:
			bad = append(bad, fmt.Sprintf("%s %s: %d of %d sessions connected (%s)", x.Target, x.Profile, x.Connected, x.Sessions, x.FirstErr))
		case x.Profile != "idle" && x.GotDown == 0:
			bad = append(bad, fmt.Sprintf("%s %s: no audio delta received (%s)", x.Target, x.Profile, x.FirstErr))
		case x.Profile != "idle" && x.Profile != "burst" && x.GotUp == 0:
			bad = append(bad, fmt.Sprintf("%s %s: no append reached the simulator (%s)", x.Target, x.Profile, x.FirstErr))
		}
	}
	if len(r.skips) > 0 {
		bad = append(bad, r.skips...)
	}
	if len(bad) > 0 {
		return errors.New("smoke run failed:\n  " + strings.Join(bad, "\n  "))
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startSim serves a probing simulator on a loopback port.
func startSim(pace sim.Pace, key string) (addr string, stop func(), err error) {
	srv := sim.New(sim.Options{APIKeys: []string{key}, Pace: pace, Probe: &sim.Probe{ClientAppend: clientAppend, StampDeltas: true}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }() // owner: stop
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = srv.Close()
	}, nil
}

var allTargets = []string{"direct", "splice", "nginx", "node-forward", "node-parse", "vg-pass", "vg-governed"}

// startTarget starts target name in front of e.simAddr.
func startTarget(e *env, name string) (*target, error) {
	var t *target
	var err error
	switch name {
	case "direct":
		t, err = e.direct()
	case "splice":
		t, err = e.splice()
	case "nginx":
		t, err = e.nginx(e.simAddr)
	case "node-forward":
		t, err = e.node("forward")
	case "node-parse":
		t, err = e.node("parse")
	case "vg-pass":
		t, err = e.voicegate(name, "pass", "sqlite:"+filepath.Join(e.dir, randHex(4)+"-pass.db"))
		if t != nil {
			t.About = "voicegate serve, tier `pass` (no budgets, rates or concurrency caps; firewall, session records, metering), SQLite store"
		}
	case "vg-governed":
		t, err = e.voicegate(name, "governed", "sqlite:"+filepath.Join(e.dir, randHex(4)+"-gov.db"))
		if t != nil {
			t.About = "voicegate serve, tier `governed` (budgets per session, user-day and user-month with a reservation per response, per-session event and response rates, per-user concurrency leases), SQLite store"
		}
	default:
		return nil, fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return nil, err
	}
	t.Name = name
	return t, nil
}

// relayBench runs every relay profile against every target.
func relayBench(ctx context.Context, e *env, o options, rep *report, logf func(string, ...any)) error {
	names := allTargets
	if o.targets != "" {
		names = strings.Split(o.targets, ",")
	}
	talk, tel := profTalk, profTel
	if o.short {
		talk.TalkFor, tel.TalkFor = 800*time.Millisecond, 800*time.Millisecond
	}
	rep.profiles = []profile{talk, profBurst, profIdle, tel}
	idleN, telN, burstN := 200, 100, 4
	burstDur := o.dur
	if o.short {
		idleN, telN, burstN = 8, 8, 2
	}
	seq := 0
	nextSeq := func() int { seq++; return seq }

	for _, pace := range []sim.Pace{sim.PaceRealtime, sim.PaceFast} {
		addr, stopSim, err := startSim(pace, e.simKey)
		if err != nil {
			return err
		}
		e.simAddr = addr
		capOpen := map[string]bool{}
		for _, name := range names {
			if ctx.Err() != nil {
				stopSim()
				return ctx.Err()
			}
			t, err := startTarget(e, name)
			if err != nil {
				logf("%s: not measured: %v", name, err)
				rep.skipped(name, err)
				continue
			}
			rep.target(t)
			one := func(p profile, n int, d time.Duration, ready ...func()) runResult {
				spec := runSpec{ep: t.ep, prof: p, sessions: n, dur: d, pid: t.pid(), seq: nextSeq()}
				if len(ready) > 0 {
					spec.ready = ready[0]
				}
				r := run(ctx, spec)
				r.Target = name
				logf("%-12s %-9s n=%-4d up p50/p99 %v/%v down p50/p99 %v/%v lost=%d reord=%d err=%d cpu=%v %s",
					name, p.Name, n, r.Up.P50, r.Up.P99, r.Down.P50, r.Down.P99, r.Lost(), r.ReorderUp+r.ReorderDown, r.Errors, r.CPU, r.FirstErr)
				rep.add(r)
				return r
			}
			if pace == sim.PaceRealtime {
				one(profIdle, idleN, min(o.dur, 5*time.Second), func() {
					goHeapProfile(ctx, t, rep, fmt.Sprintf("idle, %d sessions held open", idleN), "memory per idle session")
				})
				capOpen[name] = true
				for _, n := range o.levels {
					if !capOpen[name] || ctx.Err() != nil {
						break
					}
					r := one(talk, n, o.dur)
					if !rep.withinCapacity(r) {
						capOpen[name] = false
					}
				}
				one(tel, telN, o.dur)
				if !o.noPerf && strings.HasPrefix(name, "vg-") {
					n := o.levels[len(o.levels)/2]
					profileTarget(ctx, t, rep, "talk", func() {
						goCPUProfile(ctx, t, rep, fmt.Sprintf("talk, %d sessions", n), "CPU per session, added latency, capacity", 6, func() { one(talk, n, o.dur) })
					})
				}
			} else {
				one(profBurst, burstN, burstDur)
				if !o.noPerf && strings.HasPrefix(name, "vg-") {
					profileTarget(ctx, t, rep, "burst", func() {
						goCPUProfile(ctx, t, rep, fmt.Sprintf("burst, %d sessions", burstN), "burst CPU per GB", 6, func() { one(profBurst, burstN, burstDur) })
					})
				}
			}
			t.stop()
		}
		stopSim()
	}
	return nil
}

// profileTarget records a perf profile of t's process while load runs.
func profileTarget(ctx context.Context, t *target, rep *report, label string, load func()) {
	perf, err := exec.LookPath("perf")
	if err != nil || t.pid() == 0 {
		return
	}
	data := filepath.Join(os.TempDir(), fmt.Sprintf("vgbench-%s-%s.perf", t.Name, label))
	rec := exec.CommandContext(ctx, perf, "record", "-F", "499", "-p", fmt.Sprint(t.pid()), "-o", data, "--", "sleep", "6")
	rec.Stdout, rec.Stderr = io.Discard, io.Discard
	if err := rec.Start(); err != nil {
		return
	}
	load()
	_ = rec.Wait()
	out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "symbol", "--percent-limit", "1.5").Output()
	_ = os.Remove(data)
	if err != nil {
		return
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" {
			continue
		}
		lines = append(lines, strings.TrimRight(l, " "))
		if len(lines) == 25 {
			break
		}
	}
	rep.profilesTop = append(rep.profilesTop, perfTop{Target: t.Name, Label: label, Lines: lines})
}

// mintBench measures the mint path and the limiter.
func mintBench(ctx context.Context, e *env, o options, rep *report, logf func(string, ...any)) error {
	d := 8 * time.Second
	workers := 32
	if o.short {
		d, workers = time.Second, 8
	}
	addr, stopSim, err := startSim(sim.PaceRealtime, e.simKey)
	if err != nil {
		return err
	}
	defer stopSim()
	e.simAddr = addr

	rs, err := startRedis(e.dir)
	if err != nil {
		logf("redis: %v", err)
	}
	redisURL := ""
	if rs != nil {
		defer rs.t.stop()
		redisURL = "redis://" + rs.addr + "/0"
	}
	body := func(tier string) func(int64) string {
		return func(i int64) string {
			return fmt.Sprintf(`{"session":{"type":"realtime","model":"gpt-realtime"},"user":"m%d","tier":"%s"}`, i, tier)
		}
	}
	// nginx return 200.
	if ng, err := e.nginx(e.simAddr); err == nil {
		r := hammer(ctx, "nginx `return 200`", ng.okURL, "", func(int64) string { return "{}" }, workers, d, ng.pid())
		r.About = "POST of a mint-sized body answered by `return 200`"
		rep.mints = append(rep.mints, r)
		logf("mint %-28s %.0f/s %s", r.Name, r.PerSec, r.Err)
		ng.stop()
	} else {
		logf("nginx: %v", err)
	}
	type storeArg struct {
		name, url string
		extra     []string // serve flags
	}
	stores := []storeArg{
		{"memory", "memory", nil},
		{"sqlite", "sqlite:" + filepath.Join(e.dir, "mint.db"), nil},
		{"sqlite durable", "sqlite:" + filepath.Join(e.dir, "mint-durable.db"), []string{"--durable"}},
	}
	if redisURL != "" {
		stores = append(stores, storeArg{"redis", redisURL, nil})
	}
	for _, st := range stores {
		for _, tier := range []string{"pass", "governed"} {
			t, err := e.voicegate("vg-mint-"+strings.ReplaceAll(st.name, " ", "-"), tier, st.url, st.extra...)
			if err != nil {
				logf("voicegate %s: %v", st.name, err)
				continue
			}
			var r mintResult
			name := fmt.Sprintf("voicegate, %s store, tier %s", st.name, tier)
			load := func() { r = hammer(ctx, name, t.ep.mintURL, e.adminKey, body(tier), workers, d, t.pid()) }
			if tier == "pass" && !o.short && d > 6*time.Second {
				goCPUProfile(ctx, t, rep, "mints, "+st.name+" store", "mints/s", 6, load)
			} else {
				load()
			}
			r.About = map[string]string{"pass": "no mint rate limits", "governed": "per-user mint rate (GCRA in the store) per mint"}[tier]
			if len(st.extra) > 0 {
				r.About += "; `--durable`: each write acknowledged after fsync, writes group-committed"
			}
			rep.mints = append(rep.mints, r)
			logf("mint %-28s %.0f/s %s", r.Name, r.PerSec, r.Err)
			t.stop()
		}
	}
	// The reference of durable group commit: the same durable store with
	// one commit, so one fsync, per write; in process, so no HTTP cost.
	for _, batch := range []int{sqlite.DefaultMaxBatch, 1} {
		r, err := durableStoreMints(ctx, filepath.Join(e.dir, fmt.Sprintf("mint-durable-%d.db", batch)), batch, workers, d)
		if err != nil {
			logf("durable store mints (batch %d): %v", batch, err)
			continue
		}
		rep.mints = append(rep.mints, r)
		logf("mint %-28s %.0f/s %s", r.Name, r.PerSec, r.Err)
	}
	if r, err := fsyncRate(ctx, e.dir, min(d, 3*time.Second)); err != nil {
		logf("fsync rate: %v", err)
	} else {
		rep.mints = append(rep.mints, r)
		logf("mint %-28s %.0f/s", r.Name, r.PerSec)
	}
	if rs != nil {
		n := 200000
		if o.short {
			n = 5000
		}
		v, ver, err := redisBenchmarkGCRA(rs.addr, workers, n)
		rep.redisBench, rep.redisBenchVer = v, ver
		if err != nil {
			rep.redisBenchErr = err.Error()
		}
	}
	stores2, closeStores, err := openStores(ctx, e.dir, redisURL)
	if err != nil {
		return err
	}
	defer closeStores()
	if st, ok := stores2["redis"]; ok {
		rep.redisAllow = allowRate(ctx, st, workers, d/2)
	}
	for _, name := range []string{"memory", "sqlite", "redis"} {
		st, ok := stores2[name]
		if !ok {
			continue
		}
		attempts := 5000
		if o.short {
			attempts = 500
		}
		g, err := exactness(ctx, st, "exact:"+randHex(4), 100, 64, attempts)
		x := exact{Store: name, Limit: 100, Workers: 64, Attempts: attempts, Granted: g}
		if err != nil {
			x.Err = err.Error()
		}
		rep.exact = append(rep.exact, x)
		logf("exactness %s: %d of %d granted (limit 100)", name, g, attempts)
	}
	return nil
}
