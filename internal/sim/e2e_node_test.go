package sim

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/testenv"
)

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

// runNode runs a script of the e2e Node project with env.
func runNode(t *testing.T, script string, env ...string) nodeResult {
	t.Helper()
	var r nodeResult
	testenv.RunNode(t, testenv.RequireNodeDir(t), script, env, &r)
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
	cert := testenv.SelfSignedCert(t, t.TempDir())
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	hs.StartTLS()
	t.Cleanup(func() { _ = s.Close(); hs.Close() })
	ca := cert.CertFile
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	r := runNode(t, "sim_openai_ws.mjs", "SIM_BASE_URL=https://localhost:"+port+"/v1", "SIM_API_KEY="+testKey, "NODE_EXTRA_CA_CERTS="+ca)
	checkTurn(t, s, r)
	if r.Ephemeral != "ek_" || r.First != "session.created" || !r.SawSessionUpdated {
		t.Errorf("result = %+v", r)
	}
}
