package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
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

func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir(), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	simSrv := sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast})
	s.sim = httptest.NewServer(simSrv.Handler())
	t.Cleanup(func() { _ = simSrv.Close() })
	t.Cleanup(s.sim.Close)

	certFile, keyFile, pool := writeCert(t, s.dir)
	s.caFile = certFile
	s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(s.client.CloseIdleConnections)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.base = "https://" + addr
	s.dbPath = filepath.Join(s.dir, "vg.db")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", addr, "--store", "sqlite:"+s.dbPath,
		"--upstream", s.sim.URL+"/v1", "--admin-key", adminKey, "--tls-cert", certFile, "--tls-key", keyFile,
		"--log-format", "json", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+serverKey)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
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

// runNode runs a gw script against the stack; dumpFile receives every body
// and event the script received.
func (s *stack) runNode(t *testing.T, script, dumpFile string) turnResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	wsURL := "wss" + strings.TrimPrefix(s.base, "https") + "/v1/realtime"
	cmd.Env = append(os.Environ(), "VG_BASE_URL="+s.base+"/v1", "VG_WS_URL="+wsURL, "VG_APP_KEY="+s.appKey,
		"DUMP_FILE="+dumpFile, "NODE_EXTRA_CA_CERTS="+s.caFile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s\ngateway stderr: %s", script, err, out.String(), errb.String(), s.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var r turnResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("node %s output %q: %v", script, out.String(), err)
	}
	return r
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1/localhost.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "voicegate e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
