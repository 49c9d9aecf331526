package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkRealtimeSessions is the load test of the simulator: it opens
// SIM_LOAD_SESSIONS (default 1000) loopback WebSocket sessions at real-time
// pace, each doing voice turns for SIM_LOAD_SECONDS (default 10): 1 s of
// speech and 0.6 s of silence appended, server VAD commits and responds,
// the client reads the paced audio until response.done, then the next turn.
// It reports the pacing lag of audio deltas (arrival minus the ideal
// real-time schedule, measured from response.created) and process CPU per
// session-second (getrusage; client and server share the process, so this
// is an upper bound for the simulator alone). Lag is measured from the
// moment the client has written a turn's audio: delta k is due k·100 ms
// later.
//
//	go test -run '^$' -bench RealtimeSessions -benchtime 1x ./internal/sim
func BenchmarkRealtimeSessions(b *testing.B) {
	n := envInt("SIM_LOAD_SESSIONS", 1000)
	secs := envInt("SIM_LOAD_SECONDS", 10)
	for i := 0; i < b.N; i++ {
		r := runLoad(b, n, time.Duration(secs)*time.Second)
		b.ReportMetric(float64(n), "sessions")
		b.ReportMetric(r.cpuPerSessionSec*1000, "cpu-ms/session-s")
		b.ReportMetric(float64(r.p50.Microseconds())/1000, "lag-p50-ms")
		b.ReportMetric(float64(r.p99.Microseconds())/1000, "lag-p99-ms")
		b.ReportMetric(float64(r.max.Microseconds())/1000, "lag-max-ms")
		b.ReportMetric(float64(r.turns), "turns")
		b.ReportMetric(float64(r.failed), "failed")
		b.ReportMetric(r.audioSec, "audio-s")
		b.Logf("%d sessions × %v: %d turns, %d failed; lag p50 %v p99 %v max %v; %.0f s of audio delivered (%.0f%% of real time per session); CPU %.2f%% of a core per session (%.1f ms/session-s), %.2f cores total",
			n, time.Duration(secs)*time.Second, r.turns, r.failed, r.p50, r.p99, r.max, r.audioSec, 100*r.audioSec/(float64(n)*r.wall.Seconds()), r.cpuPerSessionSec*100, r.cpuPerSessionSec*1000, r.cores)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type loadResult struct {
	turns, failed    int
	p50, p99, max    time.Duration
	cpuPerSessionSec float64
	cores            float64
	audioSec         float64
	wall             time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runLoad(b *testing.B, n int, d time.Duration) loadResult {
	s := New(Options{})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	defer s.Close()
	url := wsURL(hs, "?model=gpt-realtime")

	turn := make([]string, 0, 20)
	for _, pcm := range [][]byte{speech(1000), silence(600)} {
		for i := 0; i < len(pcm); i += 4800 * 4 { // 400 ms appends
			ev, _ := json.Marshal(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(pcm[i:min(i+4800*4, len(pcm))])})
			turn = append(turn, string(ev))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed int
	var mu sync.Mutex
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-load"}}})
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			c.SetReadLimit(readLimit)
			conns[i] = c
		}()
	}
	wg.Wait()
	b.ResetTimer()

	var lags []time.Duration
	turns := 0
	cpu0, wall0 := cpuTime(), time.Now()
	end := wall0.Add(d)
	deltaPrefix := []byte(`{"type":"response.output_audio.delta"`)
	donePrefix := []byte(`{"type":"response.done"`)
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseNow()
			// Spread the sessions' turns over the first second.
			time.Sleep(time.Duration(i) * time.Second / time.Duration(n))
			var buf bytes.Buffer // reused: the client should not dominate the profile
			var myLags []time.Duration
			myTurns := 0
			fail := false
			for time.Now().Before(end) && !fail {
				for _, ev := range turn {
					if err := c.Write(ctx, websocket.MessageText, []byte(ev)); err != nil {
						fail = true
						break
					}
				}
				// Ideal schedule: server VAD ends the turn as soon as it has
				// read these appends, so delta k is due at t0 + k·100 ms.
				start := time.Now()
				k := 0
				for !fail {
					_, rd, err := c.Reader(ctx)
					if err == nil {
						buf.Reset()
						_, err = buf.ReadFrom(rd)
					}
					if err != nil {
						fail = true
						break
					}
					msg := buf.Bytes()
					switch {
					case bytes.HasPrefix(msg, deltaPrefix):
						myLags = append(myLags, time.Since(start.Add(time.Duration(k)*chunkMs*time.Millisecond)))
						k++
					case bytes.HasPrefix(msg, donePrefix):
						myTurns++
					}
					if bytes.HasPrefix(msg, donePrefix) {
						break
					}
				}
			}
			mu.Lock()
			lags = append(lags, myLags...)
			turns += myTurns
			if fail && ctx.Err() == nil && time.Now().Before(end) {
				failed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(wall0)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	slices.Sort(lags)
	r := loadResult{turns: turns, failed: failed, audioSec: float64(len(lags)) * chunkMs / 1000, wall: wall}
	if len(lags) > 0 {
		r.p50, r.p99, r.max = lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	}
	r.cores = cpu.Seconds() / wall.Seconds()
	r.cpuPerSessionSec = cpu.Seconds() / (float64(n) * wall.Seconds())
	return r
}
