package sim

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
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eDir is the Node project with the pinned SDKs.
func e2eDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../e2e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openai", "agents-realtime")); err != nil {
		t.Fatalf("e2e/node_modules is missing: run `cd e2e && npm ci` first (%v)", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	return dir
}

// nodeResult is what the e2e scripts print.
type nodeResult struct {
	Status            string         `json:"status"`
	Usage             map[string]any `json:"usage"`
	AudioBytes        int            `json:"audioBytes"`
	Transcript        string         `json:"transcript"`
	SawSpeechStarted  bool           `json:"sawSpeechStarted"`
	SawCommitted      bool           `json:"sawCommitted"`
	SawSessionUpdated bool           `json:"sawSessionUpdated"`
	Ephemeral         string         `json:"ephemeral"`
	First             string         `json:"first"`
}

func runNode(t *testing.T, script string, env ...string) nodeResult {
	t.Helper()
	dir := e2eDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s", script, err, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var r nodeResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("node output %q: %v (stderr %s)", out.String(), err, errb.String())
	}
	return r
}

func checkTurn(t *testing.T, s *Server, r nodeResult) {
	t.Helper()
	if r.Status != "completed" || !r.SawSpeechStarted {
		t.Fatalf("turn = %+v", r)
	}
	if !strings.HasPrefix(r.Transcript, "This is simulated reply number 1 to ") {
		t.Errorf("transcript = %q", r.Transcript)
	}
	wantMs := outputAudioMs(r.Transcript)
	if r.AudioBytes != wantMs*48 {
		t.Errorf("audio bytes = %d, want %d (%d ms)", r.AudioBytes, wantMs*48, wantMs)
	}
	var l []LedgerEntry // the responses; the SDK may also turn input transcription on
	for _, e := range s.Ledger() {
		if e.Kind == "" {
			l = append(l, e)
		}
	}
	if len(l) != 1 {
		t.Fatalf("ledger has %d responses, want 1", len(l))
	}
	u := l[0].Usage
	if got := int64(r.Usage["output_tokens"].(float64)); got != u.OutputTokens || u.OutputTokenDetails.AudioTokens != int64(wantMs/50) {
		t.Errorf("usage seen by node %v, ledger %+v", r.Usage, u)
	}
	if u.TotalTokens != u.InputTokens+u.OutputTokens || u.InputTokenDetails.AudioTokens < 10 {
		t.Errorf("ledger usage %+v", u)
	}
}

// TestNodeAgentsRealtimeVoiceTurn drives @openai/agents-realtime's
// RealtimeSession over ws:// through a voice turn.
func TestNodeAgentsRealtimeVoiceTurn(t *testing.T) {
	s, hs := startSim(t, Options{})
	r := runNode(t, "sim_agents.mjs", "SIM_WS_URL="+wsURL(hs, ""), "SIM_API_KEY="+testKey)
	checkTurn(t, s, r)
	if !r.SawCommitted {
		t.Errorf("no input_audio_buffer.committed")
	}
}

// TestNodeOpenAIRealtimeWSVoiceTurn drives openai-node's OpenAIRealtimeWS
// over wss:// (the simulator serving TLS, trusted via NODE_EXTRA_CA_CERTS).
func TestNodeOpenAIRealtimeWSVoiceTurn(t *testing.T) {
	s := New(Options{APIKeys: []string{testKey}})
	hs := httptest.NewUnstartedServer(s.Handler())
	cert, caPEM := selfSigned(t)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(func() { _ = s.Close(); hs.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	r := runNode(t, "sim_openai_ws.mjs", "SIM_BASE_URL=https://localhost:"+port+"/v1", "SIM_API_KEY="+testKey, "NODE_EXTRA_CA_CERTS="+ca)
	checkTurn(t, s, r)
	if r.Ephemeral != "ek_" || r.First != "session.created" || !r.SawSessionUpdated {
		t.Errorf("result = %+v", r)
	}
}

// selfSigned makes an ECDSA certificate for 127.0.0.1 and localhost that is
// its own CA.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "voicegate sim test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
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
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}
