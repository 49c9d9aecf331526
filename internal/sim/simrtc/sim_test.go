package simrtc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/sim"
)

// These tests drive the real simulator engine through a pion client.

const serverKey = "sk-test-simrtc"

// startSim runs the simulator with its WebRTC calls on a loopback server.
func startSim(t *testing.T, pace sim.Pace) (*sim.Server, *httptest.Server) {
	t.Helper()
	srv := sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: pace})
	srv.Calls = New(srv, WithConnectTimeout(10*time.Second))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs
}

// mintKey gets an ek_ key bound to a realtime session from the simulator.
func mintKey(t *testing.T, url string) string {
	t.Helper()
	body := `{"expires_after":{"anchor":"created_at","seconds":600},"session":{"type":"realtime","model":"gpt-realtime","instructions":"be brief"}}`
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/realtime/client_secrets", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+serverKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !strings.HasPrefix(out.Value, "ek_") {
		t.Fatalf("client_secrets: status %d, value %q, err %v", resp.StatusCode, out.Value, err)
	}
	return out.Value
}

// connect makes a call with the ephemeral-key form and returns the connected
// client and the call id.
func connect(t *testing.T, url string) (*testClient, string) {
	t.Helper()
	client := newTestClient(t)
	resp := postSDP(t, url, "Bearer "+mintKey(t, url), client.offer())
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type = %q, want application/sdp", ct)
	}
	loc := resp.Header.Get("Location")
	callID, ok := strings.CutPrefix(loc, "/v1/realtime/calls/")
	if !ok || !strings.HasPrefix(callID, "rtc_") {
		t.Fatalf("Location = %q, want /v1/realtime/calls/rtc_…", loc)
	}
	if !strings.Contains(answer, "PCMU/8000") || strings.Contains(answer, "opus") {
		t.Errorf("answer should carry PCMU only:\n%s", answer)
	}
	client.accept(answer)
	ev := client.next(5 * time.Second)
	if ev["type"] != "session.created" {
		t.Fatalf("first event %v, want session.created", ev)
	}
	return client, callID
}

func TestVoiceTurnOverWebRTC(t *testing.T) {
	checkGoroutines(t)
	srv, hs := startSim(t, sim.PaceFast)
	client, _ := connect(t, hs.URL)

	// Speak ~1 s then stay silent ~1 s, at real time, while collecting events.
	speakDone := make(chan struct{})
	go func() {
		defer close(speakDone)
		client.speak(context.Background(), speechThenSilence(time.Second, time.Second), frameDuration)
	}()
	defer func() { <-speakDone }()

	var types []string
	var done map[string]any
	deadline := time.After(15 * time.Second)
	for done == nil {
		select {
		case ev := <-client.events:
			typ, _ := ev["type"].(string)
			types = append(types, typ)
			if typ == "response.done" {
				done = ev
			}
		case <-deadline:
			t.Fatalf("no response.done; events: %v", types)
		}
	}
	order := []string{
		"input_audio_buffer.speech_started",
		"input_audio_buffer.speech_stopped",
		"input_audio_buffer.committed",
		"response.created",
		"output_audio_buffer.started",
		"output_audio_buffer.stopped",
		"response.done",
	}
	at := 0
	for _, typ := range types {
		if at < len(order) && typ == order[at] {
			at++
		}
		if typ == "response.output_audio.delta" {
			t.Errorf("audio delta event on the data channel; WebRTC audio goes over RTP")
		}
	}
	if at != len(order) {
		t.Errorf("events %v: want the subsequence %v", types, order)
	}

	resp, _ := done["response"].(map[string]any)
	if resp["status"] != "completed" {
		t.Errorf("response.done status = %v, want completed", resp["status"])
	}
	usage, _ := resp["usage"].(map[string]any)
	if total, _ := usage["total_tokens"].(float64); total <= 0 {
		t.Errorf("usage = %v, want total_tokens > 0", usage)
	}
	if got := srv.Ledger(); len(got) != 1 || got[0].Usage.TotalTokens <= 0 {
		t.Errorf("ledger = %+v, want one entry with usage", got)
	}

	// The reply is played as PCMU RTP with the marker on the first packet.
	select {
	case pkt := <-client.firstRTP:
		if !pkt.Marker || pkt.PayloadType != 0 || len(pkt.Payload) != frameSamples {
			t.Errorf("first packet: marker %v, PT %d, %d bytes", pkt.Marker, pkt.PayloadType, len(pkt.Payload))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RTP audio from the simulator")
	}
	// At fast pace the engine is done long before the reply has played;
	// the media still runs in real time.
	deadline = time.After(10 * time.Second)
	for client.rtpEnergy.Load() < 25 {
		select {
		case <-deadline:
			t.Fatalf("%d audible packets, want at least half a second of reply", client.rtpEnergy.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = client.pc.Close()
}

func TestMultipartCallWithServerKey(t *testing.T) {
	checkGoroutines(t)
	_, hs := startSim(t, sim.PaceFast)
	client := newTestClient(t)
	session := `{"type":"realtime","model":"gpt-realtime","instructions":"multipart"}`
	resp := postMultipart(t, hs.URL, "Bearer "+serverKey, client.offer(), session)
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	client.accept(answer)
	ev := client.next(5 * time.Second)
	if ev["type"] != "session.created" {
		t.Fatalf("first event %v, want session.created", ev)
	}
	s, _ := ev["session"].(map[string]any)
	if s["instructions"] != "multipart" {
		t.Errorf("session.created session = %v, want the instructions of the session part", s)
	}
	_ = client.pc.Close()
}

func TestCallBadKey(t *testing.T) {
	_, hs := startSim(t, sim.PaceFast)
	offer := newTestClient(t).offer()
	assertEnvelope(t, postSDP(t, hs.URL, "Bearer ek_unknown0000000000000000", offer), 401, "invalid_api_key")
	assertEnvelope(t, postSDP(t, hs.URL, "Bearer sk-wrong", offer), 401, "invalid_api_key")
	assertEnvelope(t, postMultipart(t, hs.URL, "Bearer sk-wrong", offer, ""), 401, "invalid_api_key")
}

// dialSideband opens the ?call_id= WebSocket with the server key.
func dialSideband(t *testing.T, url, callID string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(url, "http") + "/v1/realtime?call_id=" + callID
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + serverKey}},
	})
	if err != nil {
		t.Fatalf("dial sideband: %v (response %v)", err, resp)
	}
	conn.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// readUntil reads sideband events until one of type typ.
func readUntil(t *testing.T, conn *websocket.Conn, typ string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var seen []string
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("sideband read waiting for %s: %v; saw %v", typ, err, seen)
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("sideband event is not JSON: %s", data)
		}
		if ev["type"] == typ {
			return ev
		}
		seen = append(seen, ev["type"].(string))
	}
}

func TestSidebandSeesAndDrivesTheCall(t *testing.T) {
	checkGoroutines(t)
	_, hs := startSim(t, sim.PaceFast)
	client, callID := connect(t, hs.URL)
	side := dialSideband(t, hs.URL, callID)

	// A response requested on the sideband plays on the call, and both
	// sides see its events.
	ev, _ := json.Marshal(map[string]any{
		"type":     "response.create",
		"event_id": "evt_side_1",
		"response": map[string]any{"instructions": "say hello"},
	})
	if err := side.Write(context.Background(), websocket.MessageText, ev); err != nil {
		t.Fatal(err)
	}
	sideDone := readUntil(t, side, "response.done")
	callDone, _ := client.waitFor("response.done", 15*time.Second)
	sideResp, _ := sideDone["response"].(map[string]any)
	callResp, _ := callDone["response"].(map[string]any)
	if sideResp["id"] == nil || sideResp["id"] != callResp["id"] {
		t.Errorf("sideband response %v, call response %v: want the same response", sideResp["id"], callResp["id"])
	}
	select {
	case <-client.firstRTP:
	case <-time.After(5 * time.Second):
		t.Fatal("the sideband's response did not play on the call")
	}
	_ = client.pc.Close()
}

func TestHangupEndsTheCall(t *testing.T) {
	checkGoroutines(t)
	_, hs := startSim(t, sim.PaceFast)
	client, callID := connect(t, hs.URL)

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/realtime/calls/"+callID+"/hangup", nil)
	req.Header.Set("Authorization", "Bearer "+serverKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hangup: status %d: %s", resp.StatusCode, body)
	}
	select {
	case <-client.dcClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the event channel stayed open after hangup")
	}
	select {
	case <-client.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer connection stayed up after hangup")
	}

	// The call is gone: a second hangup does not find it.
	req, _ = http.NewRequest(http.MethodPost, hs.URL+"/v1/realtime/calls/"+callID+"/hangup", nil)
	req.Header.Set("Authorization", "Bearer "+serverKey)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = readBody(t, resp)
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second hangup: status %d, want 404", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionExpiryHangsUp(t *testing.T) {
	checkGoroutines(t)
	srv := sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast, SessionMax: 500 * time.Millisecond})
	srv.Calls = New(srv)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client, _ := connect(t, hs.URL)
	ev, _ := client.waitFor("error", 5*time.Second)
	if e, _ := ev["error"].(map[string]any); e["code"] != "session_expired" {
		t.Fatalf("error event %v, want session_expired", ev)
	}
	select {
	case <-client.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer connection stayed up after the session expired")
	}
}

func TestCallRefusedSessionConfig(t *testing.T) {
	checkGoroutines(t)
	_, hs := startSim(t, sim.PaceFast)
	offer := newTestClient(t).offer()
	resp := postMultipart(t, hs.URL, "Bearer "+serverKey, offer, `{"type":"realtime","audio":{"output":{"voice":"nobody"}}}`)
	assertEnvelope(t, resp, 400, "invalid_value")
}

func TestBargeInClearsPlayback(t *testing.T) {
	checkGoroutines(t)
	_, hs := startSim(t, sim.PaceRealtime)
	client, _ := connect(t, hs.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	speak := func(d time.Duration) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			client.speak(ctx, speechThenSilence(d, d), frameDuration)
		}()
		return done
	}
	first := speak(700 * time.Millisecond)
	client.waitFor("output_audio_buffer.started", 10*time.Second)
	<-first
	// Interrupt while the reply plays.
	second := speak(700 * time.Millisecond)
	defer func() { cancel(); <-second }()
	done, seen := client.waitFor("response.done", 10*time.Second)
	resp, _ := done["response"].(map[string]any)
	details, _ := resp["status_details"].(map[string]any)
	if resp["status"] != "cancelled" || details["reason"] != "turn_detected" {
		t.Fatalf("response.done %v, want cancelled by turn_detected; events %v", resp, seen)
	}
	cleared := false
	for _, typ := range seen {
		cleared = cleared || typ == "output_audio_buffer.cleared"
	}
	if !cleared {
		t.Errorf("no output_audio_buffer.cleared before response.done; events %v", seen)
	}
	// The queued reply is dropped: audible packets stop within a few frames.
	time.Sleep(100 * time.Millisecond)
	before := client.rtpEnergy.Load()
	time.Sleep(300 * time.Millisecond)
	if after := client.rtpEnergy.Load(); after > before+3 {
		t.Errorf("%d audible packets in the 300 ms after barge-in, want none", after-before)
	}
}
