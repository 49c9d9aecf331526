package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRealtimeSessions is the load test of the simulator: it serves
// one simulator on loopback and re-executes the test binary as a separate
// load process (see loadClientMain) that opens SIM_LOAD_SESSIONS (default
// 1000) WebSocket sessions at real-time pace. Each session does voice
// turns back to back: 1 s of speech and 0.6 s of silence appended, server
// VAD commits and responds, the client reads the paced audio until
// response.done, then the next turn. Sessions start spread over
// SIM_LOAD_RAMP_MS (default 4000, about one turn) so that turns are evenly
// phased; the measured window is the SIM_LOAD_SECONDS (default 10) after
// the ramp.
//
// It reports the pacing lag of audio deltas (arrival minus the ideal
// real-time schedule, measured from the moment the client has written a
// turn's audio: delta k is due k·chunkMs later), the latency of the first
// delta, how late the simulator itself emitted each paced step, and CPU
// per session-second of each process over the window: getrusage of this
// process is the simulator's alone, the load process measures its own.
// It also reports how busy the whole machine was (/proc/stat), since the
// figures only mean something when other processes leave the cores free.
//
//	SIM_LOAD_SESSIONS=3000 SIM_LOAD_SECONDS=15 \
//	  go test -run '^$' -bench RealtimeSessions -benchtime 1x ./internal/sim
func BenchmarkRealtimeSessions(b *testing.B) {
	n := envInt("SIM_LOAD_SESSIONS", 1000)
	secs := envInt("SIM_LOAD_SECONDS", 10)
	for i := 0; i < b.N; i++ {
		r := runLoad(b, n, secs)
		perSess := func(cpu float64) float64 { return cpu / (float64(n) * r.Wall) }
		b.ReportMetric(float64(n), "sessions")
		b.ReportMetric(perSess(r.simCPU)*1000, "sim-cpu-ms/session-s")
		b.ReportMetric(perSess(r.CPU)*1000, "client-cpu-ms/session-s")
		b.ReportMetric(r.P50, "lag-p50-ms")
		b.ReportMetric(r.P99, "lag-p99-ms")
		b.ReportMetric(r.Max, "lag-max-ms")
		b.ReportMetric(float64(r.late99.Microseconds())/1000, "sim-late-p99-ms")
		b.ReportMetric(float64(r.Turns), "turns")
		b.ReportMetric(float64(r.Failed), "failed")
		audio := float64(r.Deltas) * chunkMs / 1000
		b.Logf("%d sessions × %ds: %d turns, %d failed; lag p50 %.0fms p99 %.0fms max %.0fms; %.0f s of audio delivered (%.0f%% of real time per session)",
			n, secs, r.Turns, r.Failed, r.P50, r.P99, r.Max, audio, 100*audio/(float64(n)*r.Wall))
		b.Logf("first delta after the turn's audio: p50 %.0fms p99 %.0fms; simulator's own pacing (due → emitted): p50 %v p99 %v max %v",
			r.FirstP50, r.FirstP99, r.late50.Round(time.Microsecond), r.late99.Round(time.Microsecond), r.lateMax.Round(time.Microsecond))
		b.Logf("simulator CPU %.3f ms per session-second (%.2f cores); load process %.3f ms per session-second (%.2f cores)",
			perSess(r.simCPU)*1000, r.simCPU/r.Wall, perSess(r.CPU)*1000, r.CPU/r.Wall)
		b.Logf("machine during the window: %.2f of %d cores busy (other processes %.2f), %.2f stolen by the hypervisor; load average %s → %s",
			r.machineBusy, runtime.NumCPU(), max(0, r.machineBusy-(r.simCPU+r.CPU)/r.Wall), r.machineSteal, r.load0, r.load1)
	}
}

type loadResult struct {
	loadReport
	simCPU       float64 // seconds, this process over the run
	load0, load1 string  // /proc/loadavg 1-minute figures before and after
	// Whole machine over the window, in cores: busy (all processes) and
	// stolen by the hypervisor.
	machineBusy, machineSteal float64
	// The simulator's own pacing: how late each step was emitted.
	late50, late99, lateMax time.Duration
}

// cpuStat is the machine-wide line of /proc/stat, in clock ticks.
type cpuStat struct{ busy, steal, total float64 }

func readCPUStat() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var st cpuStat
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		st.total += x
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			st.steal += x
		default:
			st.busy += x
		}
	}
	return st
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func runLoad(b *testing.B, n, secs int) loadResult {
	b.StopTimer()
	s := New(Options{})
	var (
		lateMu sync.Mutex
		late   []time.Duration
	)
	var measuring atomic.Bool
	s.stepLate = func(d time.Duration) {
		if measuring.Load() {
			lateMu.Lock()
			late = append(late, d)
			lateMu.Unlock()
		}
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	defer s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadClientEnv+"="+wsURL(hs, "?model=gpt-realtime"),
		fmt.Sprintf("SIM_LOAD_SESSIONS=%d", n), fmt.Sprintf("SIM_LOAD_SECONDS=%d", secs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start load process: %v", err)
	}
	defer func() { _ = cmd.Wait() }()
	defer func() { _ = cmd.Process.Signal(syscall.SIGKILL) }() // no-op once it has exited
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("load process did not get ready: %q %v", lines.Text(), lines.Err())
	}
	var r loadResult
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	if !lines.Scan() || lines.Text() != "start" {
		b.Fatalf("load process did not start: %q %v", lines.Text(), lines.Err())
	}
	b.StartTimer()
	cpu0, stat0 := cpuTime(), readCPUStat()
	r.load0 = loadAvg()
	measuring.Store(true)
	if !lines.Scan() || lines.Text() != "stop" {
		b.Fatalf("load process did not stop: %q %v", lines.Text(), lines.Err())
	}
	r.simCPU = (cpuTime() - cpu0).Seconds()
	stat1 := readCPUStat()
	if ticks := stat1.total - stat0.total; ticks > 0 {
		cores := float64(runtime.NumCPU())
		r.machineBusy = (stat1.busy - stat0.busy) / ticks * cores
		r.machineSteal = (stat1.steal - stat0.steal) / ticks * cores
	}
	measuring.Store(false)
	b.StopTimer()
	r.load1 = loadAvg()
	if !lines.Scan() {
		b.Fatalf("load process ended without a report: %v", lines.Err())
	}
	if err := json.Unmarshal(lines.Bytes(), &r.loadReport); err != nil {
		b.Fatalf("load report %q: %v", lines.Text(), err)
	}
	if r.Sessions != n {
		b.Errorf("%d of %d sessions connected", r.Sessions, n)
	}
	lateMu.Lock()
	slices.Sort(late)
	if n := len(late); n > 0 {
		r.late50, r.late99, r.lateMax = late[n/2], late[n*99/100], late[n-1]
	}
	lateMu.Unlock()
	return r
}
