package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// report accumulates a run's figures and renders BENCHMARKS.md.
type report struct {
	opts                  options
	args                  []string
	start, end            time.Time
	loadBefore, loadAfter string
	cpuModel, kernel      string
	commit                string

	targets     []*target
	skips       []string
	profiles    []profile
	results     []runResult
	profilesTop []perfTop
	goProfiles  []goProfile

	mints         []mintResult
	redisBench    float64
	redisBenchVer string
	redisBenchErr string
	redisAllow    float64
	exact         []exact
}

type perfTop struct {
	Target, Label string
	Lines         []string
}

type exact struct {
	Store                    string
	Limit, Workers, Attempts int
	Granted                  int64
	Err                      string
}

func (r *report) machine() {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				r.cpuModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := exec.Command("uname", "-sr").Output(); err == nil {
		r.kernel = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "-C", repoRoot(), "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		r.commit = strings.TrimSpace(string(b))
		if out, _ := exec.Command("git", "-C", repoRoot(), "status", "--porcelain", "--untracked-files=no").Output(); len(out) > 0 {
			r.commit += " (working tree has uncommitted changes)"
		}
	}
}

func (r *report) target(t *target) {
	for _, x := range r.targets {
		if x.Name == t.Name {
			return
		}
	}
	r.targets = append(r.targets, t)
}

func (r *report) skipped(name string, err error) {
	r.skips = append(r.skips, fmt.Sprintf("%s: %v", name, err))
}

func (r *report) add(x runResult) { r.results = append(r.results, x) }

// find returns the run of target, profile and sessions (n 0: any).
func (r *report) find(target, prof string, n int) (runResult, bool) {
	for _, x := range r.results {
		if x.Target == target && x.Profile == prof && (n == 0 || x.Sessions == n) {
			return x, true
		}
	}
	return runResult{}, false
}

// added is x's latency over direct's at the same profile and load, per
// direction (p50, p99); ok is false without a direct run.
func (r *report) added(x runResult) (up50, up99, dn50, dn99 time.Duration, ok bool) {
	d, ok := r.find("direct", x.Profile, x.Sessions)
	if !ok {
		return
	}
	return x.Up.P50 - d.Up.P50, x.Up.P99 - d.Up.P99, x.Down.P50 - d.Down.P50, x.Down.P99 - d.Down.P99, true
}

// withinCapacity: clean, and p99 added ≤ 5 ms both ways.
func (r *report) withinCapacity(x runResult) bool {
	if !x.Clean() {
		return false
	}
	if x.Target == "direct" {
		return true
	}
	_, u, _, d, ok := r.added(x)
	return ok && u <= 5*time.Millisecond && d <= 5*time.Millisecond
}

func (r *report) capacity(target string) (int, bool) {
	best, ran := 0, false
	for _, n := range r.opts.levels {
		x, ok := r.find(target, "talk", n)
		if !ok {
			break
		}
		ran = true
		if !r.withinCapacity(x) {
			break
		}
		best = n
	}
	return best, ran
}

func cpuPerGB(x runResult) float64 {
	gb := float64(x.BytesUp+x.BytesDown) / 1e9
	if gb == 0 {
		return 0
	}
	return x.CPU.Seconds() / gb
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.0f", b/1024) }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) names() []string {
	var n []string
	for _, t := range r.targets {
		n = append(n, t.Name)
	}
	return n
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full"
	if r.opts.short {
		mode = "short (smoke: loads far too small for the figures to mean anything)"
	}
	p("# voicegate benchmarks\n\n")
	p("Produced in one run by `go run ./cmd/vgbench%s` (%s mode); nothing below is edited by hand. ", strings.Join(append([]string{""}, r.args...), " "), mode)
	p("Reproduce with `go run ./cmd/vgbench` from the module root (root or sudo for `apt-get install nginx` when it is missing; `cd e2e && npm ci` for the Node relay's `ws`; `redis-server`, `redis-benchmark` and `perf` from Debian).\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s → %s (%s) |\n", r.start.UTC().Format(time.RFC3339), r.end.UTC().Format("15:04:05Z"), r.end.Sub(r.start).Round(time.Second))
	p("| commit | %s |\n", r.commit)
	p("| machine | %s, %d logical CPUs, %s, %s |\n", r.cpuModel, runtime.NumCPU(), r.kernel, runtime.Version())
	p("| /proc/loadavg before | %s |\n| /proc/loadavg after | %s |\n\n", r.loadBefore, r.loadAfter)
	noisy := false
	var l1 float64
	fmt.Sscan(r.loadBefore, &l1)
	var l2 float64
	fmt.Sscan(r.loadAfter, &l2)
	if l1 > 0.5 || l2 > 3 {
		noisy = true
	}
	if noisy {
		p("**These figures are noisy.** The machine is shared (2 cores) and other work was running during the run (load average above). The load generator, the simulator and the target all share the same two cores; ratios measured in this run are more trustworthy than absolute values, and a repeat will differ.\n\n")
	} else {
		p("The machine looked quiet at the start; it is shared, so treat single figures with care.\n\n")
	}
	p("## How it measures\n\n")
	p("- Everything runs on 127.0.0.1. The simulator (`internal/sim`) runs inside the harness with its latency probe (`sim.Probe`): every `input_audio_buffer.append` carries its *due* send time in `event_id` and the simulator times it on arrival; every `response.output_audio.delta` carries the time it was due (real-time pace) or built (fast pace) in `event_id` and the client times it on arrival. One-way latency per direction, open loop: append k is due at start + k·20 ms whatever happened before, so a held-up sender charges the wait to every frame it delayed (coordinated-omission correction).\n")
	p("- Added latency = the target's percentile minus direct's at the same load in the same run. Capacity = the largest talk load (of %v sessions) with p99 added ≤ 5 ms in both directions, no loss, no reorder and no error. Loss: appends sent − appends the simulator saw; audio deltas the response.done usage says were sent − deltas received. Reorder: a sequence number (up) or due time (down) going backwards within a session.\n", r.opts.levels)
	p("- CPU = user+system time of the target's process tree from /proc over the measured window; per GB of WebSocket payload relayed (both directions, counted at the client). RSS from /proc/PID/status (VmRSS, summed over the tree): per session = (peak during the run − before the sessions connected) / sessions. Setup = dial → session.created (voicegate: after its mint, timed separately).\n")
	p("- The simulator emits 200 ms audio deltas (its fixed chunk), not the 100 ms of the issue's talk profile; every target sees the same stream.\n\n")
	p("### Targets\n\n| target | what |\n|---|---|\n")
	for _, t := range r.targets {
		p("| %s | %s |\n", t.Name, t.About)
	}
	for _, s := range r.skips {
		p("| (not measured) | %s |\n", s)
	}
	p("\n### Profiles\n\n| profile | what |\n|---|---|\n")
	for _, pr := range r.profiles {
		p("| %s | %s |\n", pr.Name, pr.About)
	}
	p("\n")

	// Latency at the first level.
	lv := r.opts.levels[0]
	p("## Talk, %d sessions: latency, cost, memory\n\n", lv)
	p("| target | up p50 / p99 / p99.9 ms | down p50 / p99 / p99.9 ms | added up p50 / p99 | added down p50 / p99 | lost | reorder | errors | CPU s/GB | CPU ms per session-s | RSS KiB/session |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range r.names() {
		x, ok := r.find(name, "talk", lv)
		if !ok {
			continue
		}
		u50, u99, d50, d99, _ := r.added(x)
		p("| %s | %s / %s / %s | %s / %s / %s | %s / %s | %s / %s | %d | %d | %d | %.1f | %.3f | %s |\n", name,
			ms(x.Up.P50), ms(x.Up.P99), ms(x.Up.P999), ms(x.Down.P50), ms(x.Down.P99), ms(x.Down.P999),
			ms(u50), ms(u99), ms(d50), ms(d99), x.Lost(), x.ReorderUp+x.ReorderDown, x.Errors, cpuPerGB(x),
			perSessionCPU(x), kib(float64(x.RSSMax-x.RSSBase)/float64(max(x.Sessions, 1))))
	}
	p("\n## Capacity (talk)\n\n| target | capacity (sessions) | note |\n|---|---|---|\n")
	for _, name := range r.names() {
		c, ran := r.capacity(name)
		if !ran {
			continue
		}
		note := ""
		if c == r.opts.levels[len(r.opts.levels)-1] {
			note = "highest load tried"
		} else if name != "direct" {
			if dc, _ := r.capacity("direct"); dc < c || dc == 0 {
				note = "direct itself failed here: the generator or simulator is the limit"
			}
		}
		p("| %s | %d | %s |\n", name, c, note)
	}
	p("\n## Burst\n\n| target | sessions | MB/s relayed | down p50 / p99 ms | CPU s/GB | vs nginx | vs node-parse | lost | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	ng, _ := r.find("nginx", "burst", 0)
	np, _ := r.find("node-parse", "burst", 0)
	for _, name := range r.names() {
		x, ok := r.find(name, "burst", 0)
		if !ok {
			continue
		}
		p("| %s | %d | %.1f | %s / %s | %.1f | %s | %s | %d | %d |\n", name, x.Sessions,
			float64(x.BytesUp+x.BytesDown)/1e6/x.Dur.Seconds(), ms(x.Down.P50), ms(x.Down.P99), cpuPerGB(x),
			ratio(cpuPerGB(x), cpuPerGB(ng)), ratio(cpuPerGB(x), cpuPerGB(np)), x.Lost(), x.Errors)
	}
	p("\n## Idle and telephony\n\n| target | idle sessions | RSS KiB per idle session | telephony sessions | up p50 / p99 ms | down p50 / p99 ms | lost | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, name := range r.names() {
		i, ok1 := r.find(name, "idle", 0)
		t, ok2 := r.find(name, "telephony", 0)
		if !ok1 && !ok2 {
			continue
		}
		p("| %s | %d | %s | %d | %s / %s | %s / %s | %d | %d |\n", name, i.Sessions, kib(float64(i.RSSMax-i.RSSBase)/float64(max(i.Sessions, 1))),
			t.Sessions, ms(t.Up.P50), ms(t.Up.P99), ms(t.Down.P50), ms(t.Down.P99), t.Lost(), t.Errors)
	}
	p("\n## Setup\n\n| target | sessions | dial → session.created p50 / p99 ms | mint p50 / p99 ms |\n|---|---|---|---|\n")
	for _, name := range r.names() {
		x, ok := r.find(name, "talk", lv)
		if !ok {
			continue
		}
		p("| %s | %d | %s / %s | %s / %s |\n", name, x.Sessions, ms(x.Setup.P50), ms(x.Setup.P99), ms(x.Mint.P50), ms(x.Mint.P99))
	}
	r.goals(&b)
	r.mintSection(&b)
	if len(r.goProfiles) > 0 {
		p("\n## Where voicegate's time and memory go (Go profiles)\n\n")
		p("Taken from the gateway's own `--debug-addr` listener (`/debug/pprof/`) while the load named ran, summarised with `go tool pprof -top`. Each names the goals it explains; the perf profiles after them add the kernel's share.\n\n")
		for _, gp := range r.goProfiles {
			what := "CPU, 6 s (`/debug/pprof/profile?seconds=6`)"
			if gp.Kind == "heap" {
				what = "heap in use after a GC (`/debug/pprof/heap?gc=1`, `-sample_index=inuse_space`)"
			}
			p("### %s, %s: %s\n\nExplains: %s.", gp.Target, gp.Label, what, gp.Explains)
			if gp.Note != "" {
				p(" %s.", gp.Note)
			}
			p("\n\n```\n%s\n```\n\n", strings.Join(gp.Lines, "\n"))
		}
	}
	if len(r.profilesTop) > 0 {
		p("\n## Where voicegate's time goes (perf, flat profile of the gateway process)\n\n")
		for _, pt := range r.profilesTop {
			p("%s, %s load (`perf record -F 499 -p PID`, `perf report --no-children --sort symbol`, entries ≥ 1.5%%):\n\n```\n%s\n```\n\n", pt.Target, pt.Label, strings.Join(pt.Lines, "\n"))
		}
	}
	p("\n## Every run\n\n| target | profile | sessions | connected | up p50/p99/p99.9 ms | down p50/p99/p99.9 ms | sent up | seen up | deltas want/got | reorder | errors | first error | CPU s | generator CPU s | RSS before → peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.results {
		p("| %s | %s | %d | %d | %s/%s/%s | %s/%s/%s | %d | %d | %d/%d | %d | %d | %s | %.2f | %.2f | %s → %s |\n", x.Target, x.Profile, x.Sessions, x.Connected,
			ms(x.Up.P50), ms(x.Up.P99), ms(x.Up.P999), ms(x.Down.P50), ms(x.Down.P99), ms(x.Down.P999),
			x.SentUp, x.GotUp, x.WantDown, x.GotDown, x.ReorderUp+x.ReorderDown, x.Errors, strings.ReplaceAll(trunc(x.FirstErr, 80), "|", "/"),
			x.CPU.Seconds(), x.GenCPU.Seconds(), mib(x.RSSBase), mib(x.RSSMax))
	}
	return b.String()
}

func perSessionCPU(x runResult) float64 {
	if x.Sessions == 0 || x.Dur == 0 {
		return 0
	}
	return float64(x.CPU.Milliseconds()) / float64(x.Sessions) / x.Dur.Seconds()
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// latencyVerdict is verdict for a latency comparison, unless a figure it
// compares is below direct's (negative added latency): then the run's
// noise is larger than what the goal measures, and it says so.
func latencyVerdict(ok bool, figures ...time.Duration) string {
	for _, f := range figures {
		if f < 0 {
			return "inconclusive (a figure is below direct's: noise)"
		}
	}
	return verdict(ok)
}

// goals renders the goals against this run's figures.
func (r *report) goals(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	lv := r.opts.levels[0]
	p("\n## Goals (issue 13), this run\n\n| goal | voicegate | reference | verdict |\n|---|---|---|---|\n")
	get := func(t, prof string) (runResult, bool) {
		if prof == "talk" {
			return r.find(t, prof, lv)
		}
		return r.find(t, prof, 0)
	}
	sp, okS := get("splice", "talk")
	ng, okN := get("nginx", "talk")
	for _, vg := range []string{"vg-pass", "vg-governed"} {
		x, ok := get(vg, "talk")
		if !ok {
			continue
		}
		u50, u99, d50, d99, _ := r.added(x)
		if okS {
			su50, _, sd50, _, _ := r.added(sp)
			p("| %s added p50 ≤ 1.5× splice's (talk, %d) | up %s ms, down %s ms | splice up %s, down %s | %s |\n", vg, lv, ms(u50), ms(d50), ms(su50), ms(sd50),
				latencyVerdict(float64(u50) <= 1.5*float64(max(su50, 0))+0 && float64(d50) <= 1.5*float64(max(sd50, 0)), u50, d50, su50, sd50))
		}
		if okN {
			_, nu99, _, nd99, _ := r.added(ng)
			p("| %s added p99 ≤ nginx's (talk, %d) | up %s ms, down %s ms | nginx up %s, down %s | %s |\n", vg, lv, ms(u99), ms(d99), ms(nu99), ms(nd99),
				latencyVerdict(u99 <= max(nu99, 0) && d99 <= max(nd99, 0), u99, d99, nu99, nd99))
			p("| %s CPU per session ≤ 1.5× nginx's (talk) | %.3f ms/s | nginx %.3f ms/s | %s |\n", vg, perSessionCPU(x), perSessionCPU(ng),
				verdict(perSessionCPU(x) <= 1.5*perSessionCPU(ng)))
			vm := float64(x.RSSMax-x.RSSBase) / float64(x.Sessions)
			nm := float64(ng.RSSMax-ng.RSSBase) / float64(ng.Sessions)
			v := verdict(vm <= 1.5*nm)
			if vm <= 0 || nm <= 0 {
				// The target's RSS before the run included earlier runs' heap,
				// later returned: the difference means nothing.
				v = "n/a (RSS fell during the run)"
			}
			p("| %s memory per talking session ≤ 1.5× nginx's | %s KiB | nginx %s KiB | %s |\n", vg, kib(vm), kib(nm), v)
			if xi, ok := get(vg, "idle"); ok {
				if ni, ok := get("nginx", "idle"); ok {
					vm := float64(xi.RSSMax-xi.RSSBase) / float64(xi.Sessions)
					nm := float64(ni.RSSMax-ni.RSSBase) / float64(ni.Sessions)
					p("| %s memory per idle session ≤ 1.5× nginx's | %s KiB | nginx %s KiB | %s |\n", vg, kib(vm), kib(nm), verdict(vm <= 1.5*nm))
				}
			}
		}
		if xb, ok := get(vg, "burst"); ok {
			nb, ok1 := get("nginx", "burst")
			pb, ok2 := get("node-parse", "burst")
			if ok1 && ok2 {
				p("| %s burst CPU/GB ≤ nginx's and ≤ ⅓ node-parse's | %.1f s/GB | nginx %.1f, node-parse %.1f | %s |\n", vg, cpuPerGB(xb), cpuPerGB(nb), cpuPerGB(pb),
					verdict(cpuPerGB(xb) <= cpuPerGB(nb) && cpuPerGB(xb) <= cpuPerGB(pb)/3))
			}
		}
		c, _ := r.capacity(vg)
		nc, _ := r.capacity("nginx")
		p("| %s capacity ≥ nginx's | %d | nginx %d | %s |\n", vg, c, nc, verdict(c >= nc))
	}
	gv, ok1 := get("vg-governed", "talk")
	ps, ok2 := get("vg-pass", "talk")
	if ok1 && ok2 {
		p("| governed CPU/GB within 10%% of pass-through (talk) | %.1f s/GB | pass %.1f s/GB | %s |\n", cpuPerGB(gv), cpuPerGB(ps), verdict(cpuPerGB(gv) <= 1.1*cpuPerGB(ps)))
		_, gu, _, gd, _ := r.added(gv)
		_, pu, _, pd, _ := r.added(ps)
		p("| governed added p99 within 10%% of pass-through (talk) | up %s, down %s ms | pass up %s, down %s ms | %s |\n", ms(gu), ms(gd), ms(pu), ms(pd),
			latencyVerdict(float64(gu) <= 1.1*float64(max(pu, 0))+float64(100*time.Microsecond) && float64(gd) <= 1.1*float64(max(pd, 0))+float64(100*time.Microsecond), gu, gd, pu, pd))
	}
	gb, ok1 := get("vg-governed", "burst")
	pb, ok2 := get("vg-pass", "burst")
	if ok1 && ok2 {
		p("| governed burst CPU/GB within 10%% of pass-through | %.1f s/GB | pass %.1f s/GB | %s |\n", cpuPerGB(gb), cpuPerGB(pb), verdict(cpuPerGB(gb) <= 1.1*cpuPerGB(pb)))
	}
	var ngx, emb, red, dur, durGrouped, durSerial, fsyncs float64
	for _, m := range r.mints {
		switch {
		case strings.HasPrefix(m.Name, "nginx"):
			ngx = m.PerSec
		case m.Name == "voicegate, sqlite store, tier pass":
			emb = m.PerSec
		case m.Name == "voicegate, redis store, tier governed":
			red = m.PerSec
		case m.Name == "voicegate, sqlite durable store, tier governed":
			dur = m.PerSec
		case m.Name == mintDurableGrouped:
			durGrouped = m.PerSec
		case m.Name == mintDurableSerial:
			durSerial = m.PerSec
		case m.Name == mintFsyncRef:
			fsyncs = m.PerSec
		}
	}
	if ngx > 0 {
		p("| mints/s, embedded (SQLite) store ≥ 0.5× nginx `return 200` | %.0f/s | nginx %.0f/s (%s) | %s |\n", emb, ngx, ratio(emb, ngx), verdict(emb >= 0.5*ngx))
	}
	if dur > 0 && fsyncs > 0 {
		// The reference is the ceiling of any store fsyncing once per mint:
		// the disk's serial fsync rate. The in-process rows show what
		// grouping does to the same store's calls.
		p("| durable mints ≥ 5× one-fsync-per-mint | voicegate `--durable` (group commit), tier governed, over HTTP: %.0f/s (%s the fsync ceiling); its store calls in process: %.0f/s grouped, %.0f/s with one commit per write (3 fsyncs per mint) | one fsync per mint can reach at most the disk's serial fsync rate: %.0f/s | %s |\n",
			dur, ratio(dur, fsyncs), durGrouped, durSerial, fsyncs, verdict(dur >= 5*fsyncs))
	} else {
		p("| durable mints ≥ 5× one-fsync-per-mint | not measured | — | **missed**: no durable mint run (--no-mint, or it failed: see the log) |\n")
	}
	if r.redisBench > 0 {
		p("| Redis limiter ≥ 0.5× redis-benchmark on the same script | store.Allow %.0f/s (voicegate mints with Redis, governed: %.0f/s) | redis-benchmark EVAL gcra.lua %.0f/s | %s |\n",
			r.redisAllow, red, r.redisBench, verdict(r.redisAllow >= 0.5*r.redisBench))
	}
}

func (r *report) mintSection(b *strings.Builder) {
	if len(r.mints) == 0 && len(r.exact) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("\n## Mint path\n\nClosed loop, keep-alive HTTP/1.1 from the harness, each mint for a new user (`POST /v1/realtime/client_secrets` with the admin key).\n\n| server | what | OK/s | p50 / p99 ms | server CPU ms per OK | first error |\n|---|---|---|---|---|---|\n")
	for _, m := range r.mints {
		per := 0.0
		if m.OK > 0 {
			per = float64(m.CPU.Microseconds()) / 1000 / float64(m.OK)
		}
		p("| %s | %s | %.0f | %s / %s | %.3f | %s |\n", m.Name, m.About, m.PerSec, ms(m.P50), ms(m.P99), per, strings.ReplaceAll(trunc(m.Err, 100), "|", "/"))
	}
	if r.redisBench > 0 || r.redisBenchErr != "" {
		p("\nLimiter on Redis (%s): `redis-benchmark -c 32 EVAL <internal/store/redis/scripts/gcra.lua> 1 <random key> 600000 100 1`: **%.0f/s**; the store's `Allow` (go-redis, EVALSHA, 32 goroutines, random keys): **%.0f/s** (%s). %s\n",
			r.redisBenchVer, r.redisBench, r.redisAllow, ratio(r.redisAllow, r.redisBench), r.redisBenchErr)
	}
	if len(r.exact) > 0 {
		p("\nRate-limit exactness under contention: one bucket of 100 per hour, 64 goroutines racing.\n\n| store | attempts | granted | over-grant | error |\n|---|---|---|---|---|\n")
		for _, x := range r.exact {
			p("| %s | %d | %d | %d | %s |\n", x.Store, x.Attempts, x.Granted, max(x.Granted-int64(x.Limit), 0), x.Err)
		}
	}
}
