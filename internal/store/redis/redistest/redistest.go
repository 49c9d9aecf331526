// Package redistest starts a real, throw-away redis-server for tests.
//
// Tests that need Redis call Start; the server listens on a free loopback
// port, persists nothing, and is killed when the test ends. The redis-server
// binary must be on PATH: a missing binary fails the test (it is never
// skipped), so a machine without Redis cannot silently pass the Redis suite.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Start runs a fresh redis-server on 127.0.0.1 and returns its URL
// ("redis://127.0.0.1:PORT/0"). stop kills the server (it may be called
// more than once); restart stops it and starts a new, empty one on the same
// port, which is how tests simulate "Redis restarted and lost its memory".
// The server is stopped when the test ends.
func Start(t testing.TB) (url string, stop func(), restart func()) {
	t.Helper()
	bin := lookPath(t)
	s := &server{t: t, bin: bin, dir: t.TempDir()}
	s.port = freePort(t)
	s.start(true)
	t.Cleanup(s.stop)
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port), s.stop, s.restart
}

// StartCluster runs a one-node Redis Cluster owning all 16384 slots and
// returns its address ("127.0.0.1:PORT") for a cluster client. One node is
// enough to check a backend's hash tags: the server refuses any command or
// script whose keys span slots (CROSSSLOT), as a real cluster would.
func StartCluster(t testing.TB) (addr string) {
	t.Helper()
	bin := lookPath(t)
	s := &server{t: t, bin: bin, dir: t.TempDir(), extra: []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
	}}
	s.port = freePort(t)
	s.start(true)
	t.Cleanup(s.stop)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	// ADDSLOTSRANGE needs Redis 7; ADDSLOTS with every slot works before.
	slots := []string{"CLUSTER", "ADDSLOTS"}
	for i := range 16384 {
		slots = append(slots, strconv.Itoa(i))
	}
	if _, err := command(addr, slots...); err != nil {
		t.Fatalf("redistest: assign cluster slots: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := command(addr, "CLUSTER", "INFO")
		if err == nil && bytes.Contains([]byte(info), []byte("cluster_state:ok")) {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready within 10s: %q, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookPath finds redis-server or fails the test saying how to get it.
func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (install it, e.g. `apt-get install redis-server`): %v", err)
	}
	return bin
}

type server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// extra arguments for redis-server
	extra []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start launches the server, retrying because a probed free port can be
// taken by someone else before redis-server binds it. When newPort is set
// (first start) a retry moves to another port; a restart must keep its port.
func (s *server) start(newPort bool) {
	s.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if lastErr = s.startOnce(); lastErr == nil {
			return
		}
		if newPort {
			s.port = freePort(s.t)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: %v", lastErr)
}

func (s *server) startOnce() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &bytes.Buffer{}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Args = append(cmd.Args, s.extra...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { // owner: this server; exits when the process does
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, bytes.TrimSpace(out.Bytes()))
		default:
		}
		if ping(s.port) == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server on port %d did not answer PING within 10s: %s", s.port, bytes.TrimSpace(out.Bytes()))
}

func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start(false)
}

// ping checks the server answers PING.
func ping(port int) error {
	reply, err := command(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("unexpected reply %q", reply)
	}
	return nil
}

// command sends one command and returns its reply: the text of a simple
// string or integer, the body of a bulk string, or the length of an array.
// Error replies are errors.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("redis: %s", line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line[1:], nil
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
