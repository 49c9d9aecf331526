package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The load generator of BenchmarkRealtimeSessions runs in its own process
// (the test binary re-executed with loadClientEnv set) so that the
// simulator's CPU can be read alone with getrusage. It speaks WebSocket by
// hand, which keeps the client cheap: every session writes the same
// pre-masked turn (five input_audio_buffer.append frames) with one write and
// reads server frames from a 64 KiB buffered reader. The simulator sees
// ordinary RFC 6455 client frames and does all of its usual work on them
// (unmasking, parsing, VAD, base64 decoding).

// loadClientEnv holds the WebSocket URL the child process loads.
const loadClientEnv = "SIM_LOAD_CLIENT_URL"

// loadReport is what the load process prints when the run ends.
type loadReport struct {
	Sessions int     `json:"sessions"` // sessions that connected
	Turns    int     `json:"turns"`
	Failed   int     `json:"failed"`
	Deltas   int     `json:"deltas"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	FirstP50 float64 `json:"first_p50_ms"` // write of the turn → first audio delta
	FirstP99 float64 `json:"first_p99_ms"`
	CPU      float64 `json:"cpu_s"` // the load process's own CPU over the run
	Wall     float64 `json:"wall_s"`
}

// loadMask is the client masking key. RFC 6455 only requires that client
// frames be masked; a fixed key lets the turn be masked once.
var loadMask = [4]byte{0x5a, 0x13, 0xc7, 0x2e}

// maskedTextFrame encodes p as one masked, final text frame.
func maskedTextFrame(p []byte) []byte {
	b := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, loadMask[:]...)
	for i, c := range p {
		b = append(b, c^loadMask[i&3])
	}
	return b
}

// loadTurn is one voice turn as client frames: 1 s of speech and 0.6 s of
// silence in 400 ms appends, so server VAD commits after the last one.
func loadTurn() (frames []byte, count int) {
	for _, pcm := range [][]byte{speech(1000), silence(600)} {
		for i := 0; i < len(pcm); i += 4800 * 4 {
			ev, _ := json.Marshal(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(pcm[i:min(i+4800*4, len(pcm))])})
			frames = append(frames, maskedTextFrame(ev)...)
			count++
		}
	}
	return frames, count
}

// loadConn is one raw client WebSocket.
type loadConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
}

// dialLoad opens a WebSocket to u with a server-key bearer header.
func dialLoad(ctx context.Context, u *url.URL) (*loadConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer sk-load\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: status %d", resp.StatusCode)
	}
	return &loadConn{nc: nc, br: br}, nil
}

var errLoadClosed = errors.New("server closed the websocket")

// next returns the next data message (valid until the next call).
func (c *loadConn) next() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		if h[1]&0x80 != 0 {
			return nil, errors.New("masked server frame")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		if n > readLimit {
			return nil, errors.New("frame too large")
		}
		start := len(c.buf)
		c.buf = slices.Grow(c.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return nil, err
		}
		switch op := h[0] & 0x0f; {
		case op == 0x8:
			return nil, errLoadClosed
		case op >= 0x8: // ping/pong: the simulator sends none; skip
			c.buf = c.buf[:start]
			continue
		}
		if h[0]&0x80 != 0 {
			return c.buf, nil
		}
	}
}

// loadClientMain is the load process: it connects SIM_LOAD_SESSIONS
// sessions, prints "ready", waits for a line on stdin, starts the sessions
// over SIM_LOAD_RAMP_MS, prints "start", runs voice turns for
// SIM_LOAD_SECONDS, prints "stop", lets the last turns finish and prints a
// JSON loadReport.
func loadClientMain() int {
	u, err := url.Parse(os.Getenv(loadClientEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "load client:", err)
		return 2
	}
	n := envInt("SIM_LOAD_SESSIONS", 1000)
	d := time.Duration(envInt("SIM_LOAD_SECONDS", 10)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), d+3*time.Minute)
	defer cancel()

	conns := make([]*loadConn, n)
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed int
	)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialLoad(ctx, u)
			if err != nil {
				mu.Lock()
				if failed == 0 {
					fmt.Fprintln(os.Stderr, "load client:", err)
				}
				failed++
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "load client: no go signal:", err)
		return 2
	}

	turn, _ := loadTurn()
	deltaPrefix := []byte(`{"type":"response.output_audio.delta"`)
	donePrefix := []byte(`{"type":"response.done"`)
	var lags, firsts []time.Duration
	turns, connected := 0, 0
	// Sessions start spread over the ramp (about one turn cycle), so their
	// turns are evenly phased rather than in step; the measured window
	// [from, to) begins once all of them run. Stats cover the turns that
	// start inside it; CPU is read at its two ends.
	ramp := time.Duration(envInt("SIM_LOAD_RAMP_MS", 4000)) * time.Millisecond
	from := time.Now().Add(ramp)
	to := from.Add(d)
	var cpu0, cpu1 time.Duration
	marks := make(chan struct{})
	go func() { // prints the window's ends for the simulator process
		defer close(marks)
		time.Sleep(time.Until(from))
		cpu0 = cpuTime()
		fmt.Println("start")
		time.Sleep(time.Until(to))
		cpu1 = cpuTime()
		fmt.Println("stop")
	}()
	for i, c := range conns {
		if c == nil {
			continue
		}
		connected++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.nc.Close()
			stop := context.AfterFunc(ctx, func() { c.nc.Close() })
			defer stop()
			time.Sleep(time.Duration(i) * ramp / time.Duration(n))
			myLags := make([]time.Duration, 0, 6*int(d/time.Second))
			var myFirsts []time.Duration
			myTurns := 0
			fail := false
			for time.Now().Before(to) && !fail {
				if _, err := c.nc.Write(turn); err != nil {
					fail = true
					break
				}
				// Ideal schedule: server VAD ends the turn as soon as it has
				// read these appends, so delta k is due at t0 + k·chunkMs.
				start := time.Now()
				counted := !start.Before(from)
				k := 0
				for {
					msg, err := c.next()
					if err != nil {
						fail = true
						break
					}
					if bytes.HasPrefix(msg, deltaPrefix) {
						if counted {
							if k == 0 {
								myFirsts = append(myFirsts, time.Since(start))
							}
							myLags = append(myLags, time.Since(start.Add(time.Duration(k)*chunkMs*time.Millisecond)))
						}
						k++
					} else if bytes.HasPrefix(msg, donePrefix) {
						if counted {
							myTurns++
						}
						break
					}
				}
			}
			mu.Lock()
			lags = append(lags, myLags...)
			firsts = append(firsts, myFirsts...)
			turns += myTurns
			if fail && ctx.Err() == nil {
				failed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	<-marks
	wall, cpu := d, cpu1-cpu0
	slices.Sort(lags)
	slices.Sort(firsts)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := loadReport{Sessions: connected, Turns: turns, Failed: failed, Deltas: len(lags), CPU: cpu.Seconds(), Wall: wall.Seconds()}
	if len(lags) > 0 {
		r.P50, r.P99, r.Max = ms(lags[len(lags)/2]), ms(lags[len(lags)*99/100]), ms(lags[len(lags)-1])
		r.FirstP50, r.FirstP99 = ms(firsts[len(firsts)/2]), ms(firsts[len(firsts)*99/100])
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	return 0
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
