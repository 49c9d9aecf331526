package e2e_test

import (
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/testenv"
)

// TestBrowserWebRTC: headless Chromium with a fake microphone runs the
// Agents SDK with its default transport (WebRTC) from a page on another
// origin than voicegate's (so CORS is exercised, with voicegate allowing
// only that origin): a spoken turn completes, the call is metered through
// its sideband — the gateway ledger equals the simulator's — and the
// session API shows the call as webrtc.
func TestBrowserWebRTC(t *testing.T) {
	chromium := testenv.Chromium(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pagePort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	origin := "http://127.0.0.1:" + strconv.Itoa(pagePort)
	s := startStackWith(t, stackOptions{plainHTTP: true, webrtc: true, args: []string{"--allowed-origins", origin}})

	var minted struct {
		Value     string `json:"value"`
		Voicegate struct {
			SessionID string `json:"session_id"`
		} `json:"voicegate"`
	}
	s.do(t, http.MethodPost, "/v1/realtime/client_secrets", s.appKey,
		`{"session":{"type":"realtime","model":"gpt-realtime","instructions":"Be brief.","tracing":"auto","tools":[]},"user":"browser-user","limits":{"budget_usd":1}}`,
		http.StatusOK, &minted)

	wav := testenv.SpeechWAV(t, s.dir, 500, 1200, 9000) // the loop's next speech comes after the reply
	var res struct {
		OK         bool           `json:"ok"`
		Error      string         `json:"error"`
		Status     string         `json:"status"`
		ResponseID string         `json:"responseId"`
		Usage      map[string]any `json:"usage"`
		Transport  string         `json:"transport"`
		CallID     string         `json:"callId"`
		Types      []string       `json:"types"`
		Errors     []string       `json:"errors"`
	}
	testenv.RunNode(t, testenv.RequireNodeDir(t), "browser_webrtc.mjs", []string{
		"VG_BASE=" + s.base, "VG_TOKEN=" + minted.Value, "VG_MODEL=gpt-realtime", "WAV_FILE=" + wav,
		"PAGE_PORT=" + strconv.Itoa(pagePort), "CHROMIUM=" + chromium,
	}, &res)
	if !res.OK || res.Status != "completed" || res.ResponseID == "" {
		t.Fatalf("browser turn: %+v\ngateway stderr:\n%s", res, s.stderr.String())
	}
	if res.Transport != "OpenAIRealtimeWebRTC" {
		t.Errorf("the SDK used %s, want its default WebRTC transport", res.Transport)
	}
	t.Logf("events on oai-events: %v; error events: %v", res.Types, res.Errors)

	// The browser left; its token hangs the call up through voicegate (the
	// call id is the one the SDK read from Location). Once the gateway
	// recorded the end, everything billed through the sideband is in its
	// ledger: the gateway's ledger equals the simulator's, entry for entry.
	if res.CallID == "" {
		t.Fatal("the SDK found no call id in Location (CORS must expose it)")
	}
	t.Cleanup(func() {
		if t.Failed() {
			_ = s.proc.Signal(syscall.SIGQUIT) // its goroutine dump goes to stderr
			select {
			case <-s.exited:
			case <-time.After(5 * time.Second):
			}
			t.Logf("gateway stderr:\n%s", s.stderr.String())
		}
	})
	s.do(t, http.MethodPost, "/v1/realtime/calls/"+res.CallID+"/hangup", minted.Value, "", http.StatusOK, nil)
	var sess map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.do(t, http.MethodGet, "/voicegate/v1/sessions/"+minted.Voicegate.SessionID, adminKey, "", http.StatusOK, &sess)
		if sess["state"] != "live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call still shows live 15 s after the browser left: %v", sess)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronization
	}
	simL, gw := simLedger(t, s), gatewayLedger(t, s.dbPath)
	if len(simL) == 0 || len(gw) != len(simL) {
		t.Fatalf("ledger sizes: simulator %d, gateway %d", len(simL), len(gw))
	}
	found := false
	for _, e := range simL {
		g, ok := gw[e.ResponseID]
		want, _ := meter.DefaultTable().Cost(e.Model, e.Flat())
		if !ok || g.Usage != e.Flat() || g.Status != e.Status || g.CostNanoUSD != want || g.SessionID != minted.Voicegate.SessionID {
			t.Errorf("entry %s: gateway %+v, simulator %+v", e.ResponseID, g, e)
		}
		found = found || e.ResponseID == res.ResponseID
	}
	if !found {
		t.Errorf("the browser's response %s is not in the simulator's ledger", res.ResponseID)
	}
	s.do(t, http.MethodGet, "/voicegate/v1/sessions/"+minted.Voicegate.SessionID, adminKey, "", http.StatusOK, &sess)
	if sess["transport"] != "webrtc" {
		t.Errorf("session API: %v", sess)
	}
}
