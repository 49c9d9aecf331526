package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/sim/simrtc"
	"github.com/voicegate/voicegate/internal/testenv"
)

const (
	serverKey = "sk-e2e-server-SECRET-0123456789abcdefghijklmnop"
	adminKey  = "vg-e2e-admin-SECRET-0123456789abcdefghijklmnop"
)

// lockedBuffer is a bytes.Buffer shared by a subprocess and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// stack is a running simulator plus a voicegate subprocess serving TLS.
type stack struct {
	dir      string
	simSrv   *sim.Server
	proc     *os.Process
	exited   chan struct{} // closed when the voicegate process has exited
	sim      *httptest.Server
	base     string // https://127.0.0.1:PORT
	caFile   string
	dbPath   string
	client   *http.Client
	stdout   *lockedBuffer
	stderr   *lockedBuffer
	appKey   string
	bodiesMu sync.Mutex
	bodies   []string // every HTTP body the Go side received
}

// stackOptions vary the stack: plain HTTP (for a browser, which would
// refuse the self-signed certificate), a real-time simulator with its
// WebRTC side, extra serve flags.
type stackOptions struct {
	plainHTTP bool
	webrtc    bool
	args      []string
}

func startStack(t *testing.T) *stack { return startStackWith(t, stackOptions{}) }

func startStackWith(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir(), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	opts := sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast}
	if o.webrtc {
		opts.Pace = sim.PaceRealtime
	}
	simSrv := sim.New(opts)
	if o.webrtc {
		simSrv.Calls = simrtc.New(simSrv)
	}
	s.simSrv = simSrv
	s.sim = httptest.NewServer(simSrv.Handler())
	t.Cleanup(func() { _ = simSrv.Close() })
	t.Cleanup(s.sim.Close)

	var tlsArgs []string
	if o.plainHTTP {
		s.client = &http.Client{Timeout: 10 * time.Second}
	} else {
		cert := testenv.SelfSignedCert(t, s.dir)
		s.caFile = cert.CertFile
		tlsArgs = []string{"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}
		s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	}
	t.Cleanup(s.client.CloseIdleConnections)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.base = "https://" + addr
	if o.plainHTTP {
		s.base = "http://" + addr
	}
	s.dbPath = filepath.Join(s.dir, "vg.db")

	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"serve", "--addr", addr, "--store", "sqlite:" + s.dbPath,
		"--upstream", s.sim.URL + "/v1", "--admin-key", adminKey, "--log-format", "json", "--log-level", "debug"}, tlsArgs...)
	cmd := exec.CommandContext(ctx, binary, append(args, o.args...)...)
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+serverKey)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.proc, s.exited = cmd.Process, exited
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cancel()
			<-exited
		}
		cancel()
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("voicegate exited: stderr %s stdout %s", s.stderr.String(), s.stdout.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("voicegate not healthy: %v; stderr %s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var key map[string]any
	s.do(t, http.MethodPost, "/voicegate/v1/keys", adminKey, `{"name":"e2e"}`, http.StatusCreated, &key)
	s.appKey, _ = key["value"].(string)
	if !strings.HasPrefix(s.appKey, "vgk_") {
		t.Fatalf("app key response %v", key)
	}
	return s
}

// do performs an HTTP request at the gateway, records the body, checks the
// status and decodes JSON into out when non-nil.
func (s *stack) do(t *testing.T, method, path, bearer, body string, want int, out any) string {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	s.bodiesMu.Lock()
	s.bodies = append(s.bodies, path+" "+string(b))
	s.bodiesMu.Unlock()
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return string(b)
}

// turnResult is the JSON line printed by the gw_*.mjs scripts.
type turnResult struct {
	Status           string         `json:"status"`
	Usage            map[string]any `json:"usage"`
	ResponseID       string         `json:"responseId"`
	AudioBytes       int            `json:"audioBytes"`
	Transcript       string         `json:"transcript"`
	SawSpeechStarted bool           `json:"sawSpeechStarted"`
}

// runNode runs a gw script that reports one turn against the stack;
// dumpFile receives every body and event the script received.
func (s *stack) runNode(t *testing.T, script, dumpFile string) turnResult {
	t.Helper()
	var r turnResult
	s.runScript(t, script, dumpFile, &r)
	return r
}

// runScript runs a gw script against the stack and decodes the JSON line it
// prints last into out; dumpFile receives every body and event the script
// received.
func (s *stack) runScript(t *testing.T, script, dumpFile string, out any) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("gateway stderr: %s", s.stderr.String())
		}
	}()
	wsURL := "wss" + strings.TrimPrefix(s.base, "https") + "/v1/realtime"
	testenv.RunNode(t, testenv.RequireNodeDir(t), script, []string{"VG_BASE_URL=" + s.base + "/v1", "VG_WS_URL=" + wsURL,
		"VG_APP_KEY=" + s.appKey, "DUMP_FILE=" + dumpFile, "NODE_EXTRA_CA_CERTS=" + s.caFile}, out)
}
