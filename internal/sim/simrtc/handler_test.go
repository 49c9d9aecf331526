package simrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/sim"
)

// fakeEngine stands in for *sim.Server to test the WebRTC side alone: each
// call emits session.created then hello, answers ping with pong, plays one
// second of tone on play, and counts the input audio.
type fakeEngine struct {
	n       atomic.Int64
	mu      sync.Mutex
	calls   map[string]*fakeCall
	started chan *fakeCall
}

type fakeCall struct {
	id         string
	t          sim.AudioTransport
	session    json.RawMessage
	inputBytes atomic.Int64
	exited     chan struct{}
	readErr    error
}

const testSession = `{"type":"realtime","model":"gpt-realtime"}`

func newFakeEngine() *fakeEngine {
	return &fakeEngine{calls: map[string]*fakeCall{}, started: make(chan *fakeCall, 16)}
}

func (e *fakeEngine) engine() engine {
	return engine{
		authorize: func(authorization string) (keyInfo, error) {
			switch authorization {
			case "Bearer ek_test":
				return keyInfo{ephemeral: true, session: json.RawMessage(testSession)}, nil
			case "Bearer sk-test":
				return keyInfo{}, nil
			}
			return keyInfo{}, errors.New("unknown key")
		},
		startCall: func(_ context.Context, t sim.AudioTransport, session json.RawMessage) (string, error) {
			fc := &fakeCall{id: fmt.Sprintf("rtc_%032d", e.n.Add(1)), t: t, session: session, exited: make(chan struct{})}
			e.mu.Lock()
			e.calls[fc.id] = fc
			e.mu.Unlock()
			go fc.run()
			e.started <- fc
			return fc.id, nil
		},
	}
}

func (fc *fakeCall) run() {
	defer close(fc.exited)
	ctx := context.Background()
	inputDone := make(chan struct{})
	go func() {
		defer close(inputDone)
		for chunk := range fc.t.InputAudio() {
			fc.inputBytes.Add(int64(len(chunk)))
		}
	}()
	defer func() { <-inputDone }()
	_ = fc.t.WriteEvent(ctx, []byte(`{"type":"session.created"}`))
	_ = fc.t.WriteEvent(ctx, []byte(`{"type":"hello"}`))
	for {
		raw, err := fc.t.ReadEvent(ctx)
		if err != nil {
			fc.readErr = err
			return
		}
		var ev struct{ Type string }
		_ = json.Unmarshal(raw, &ev)
		switch ev.Type {
		case "ping":
			_ = fc.t.WriteEvent(ctx, []byte(`{"type":"pong"}`))
		case "play":
			_ = fc.t.WriteAudio(ctx, pcmBytes(tone(440, 24000, 24000, 10000)))
			_ = fc.t.WriteEvent(ctx, []byte(`{"type":"playing"}`))
		case "clear":
			fc.t.ClearAudio()
		}
	}
}

func startFake(t *testing.T) (*fakeEngine, *httptest.Server) {
	t.Helper()
	eng := newFakeEngine()
	srv := httptest.NewServer(newHandler(eng.engine(), []Option{WithConnectTimeout(5 * time.Second)}))
	t.Cleanup(srv.Close)
	return eng, srv
}

// checkGoroutines fails t if goroutines do not return to baseline.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left over a baseline of %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
	})
}

func TestCallWithFakeEngine(t *testing.T) {
	checkGoroutines(t)
	eng, srv := startFake(t)
	client := newTestClient(t)
	offer := client.offer()
	if !strings.Contains(offer, "opus/48000") {
		t.Fatal("the test offer should offer Opus first, like a browser")
	}

	resp := postSDP(t, srv.URL, "Bearer ek_test", offer)
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type = %q", ct)
	}
	fc := <-eng.started
	if loc, want := resp.Header.Get("Location"), "/v1/realtime/calls/"+fc.id; loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	if string(fc.session) != testSession {
		t.Errorf("session = %s, want the key's %s", fc.session, testSession)
	}
	for _, want := range []string{"PCMU/8000", "a=candidate:", "127.0.0.1", "webrtc-datachannel", "a=sendrecv"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "opus") {
		t.Errorf("answer offers Opus:\n%s", answer)
	}
	client.accept(answer)

	// Events written before the channel opened arrive first, in order.
	for _, want := range []string{"session.created", "hello"} {
		if ev := client.next(5 * time.Second); ev["type"] != want {
			t.Fatalf("event %v, want %s", ev, want)
		}
	}
	client.send(map[string]any{"type": "ping"})
	if ev := client.next(5 * time.Second); ev["type"] != "pong" {
		t.Fatalf("event %v, want pong", ev)
	}

	// Input: 400 ms of PCMU reach the engine as 24 kHz PCM16 (48 bytes/ms).
	client.speak(context.Background(), speechThenSilence(400*time.Millisecond, 0), 5*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for fc.inputBytes.Load() < 400*48 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fc.inputBytes.Load(); got != 400*48 {
		t.Errorf("engine got %d bytes of input audio, want %d", got, 400*48)
	}

	// Output: the tone arrives as PCMU RTP, starting with a marker.
	client.send(map[string]any{"type": "play"})
	client.waitFor("playing", 5*time.Second)
	select {
	case pkt := <-client.firstRTP:
		if !pkt.Marker || len(pkt.Payload) != frameSamples || pkt.PayloadType != 0 {
			t.Errorf("first packet: marker %v, %d bytes, PT %d; want marker, 160 bytes, PT 0", pkt.Marker, len(pkt.Payload), pkt.PayloadType)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RTP from the simulator")
	}
	time.Sleep(200 * time.Millisecond)
	client.send(map[string]any{"type": "clear"})
	client.send(map[string]any{"type": "ping"})
	client.waitFor("pong", 5*time.Second)
	afterClear := client.rtpPackets.Load()
	time.Sleep(200 * time.Millisecond)
	if n := client.rtpPackets.Load(); n < 5 || n > afterClear+3 {
		t.Errorf("%d packets, %d after clear: want some before, none long after", n, n-afterClear)
	}
	if client.rtpEnergy.Load() == 0 {
		t.Error("every packet was silence")
	}

	// The peer hanging up ends the call: the engine's ReadEvent fails.
	_ = client.pc.Close()
	select {
	case <-fc.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine's session did not end after the peer closed")
	}
	if !errors.Is(fc.readErr, ErrPeerGone) {
		t.Errorf("ReadEvent error = %v, want ErrPeerGone", fc.readErr)
	}
	if err := fc.t.WriteEvent(context.Background(), []byte(`{}`)); !errors.Is(err, ErrPeerGone) {
		t.Errorf("WriteEvent after the end = %v, want ErrPeerGone", err)
	}
}

func TestCloseClosesPeerConnection(t *testing.T) {
	checkGoroutines(t)
	eng, srv := startFake(t)
	client := newTestClient(t)
	resp := postSDP(t, srv.URL, "Bearer ek_test", client.offer())
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	fc := <-eng.started
	client.accept(answer)
	client.waitFor("hello", 5*time.Second)

	if err := fc.t.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-client.dcClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's event channel stayed open after the simulator closed the call")
	}
	select {
	case <-client.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's peer connection stayed up after the simulator closed the call")
	}
	<-fc.exited
	if !errors.Is(fc.readErr, ErrCallClosed) {
		t.Errorf("ReadEvent error = %v, want ErrCallClosed", fc.readErr)
	}
}

func TestMultipartWithServerKey(t *testing.T) {
	checkGoroutines(t)
	eng, srv := startFake(t)
	client := newTestClient(t)
	session := `{"type":"realtime","model":"gpt-realtime","instructions":"be brief"}`
	resp := postMultipart(t, srv.URL, "Bearer sk-test", client.offer(), session)
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	fc := <-eng.started
	if string(fc.session) != session {
		t.Errorf("session = %s, want %s", fc.session, session)
	}
	client.accept(answer)
	if ev := client.next(5 * time.Second); ev["type"] != "session.created" {
		t.Fatalf("first event %v", ev)
	}
	_ = client.pc.Close()
	<-fc.exited
}

func TestRequestErrors(t *testing.T) {
	checkGoroutines(t)
	eng, srv := startFake(t)
	offer := newTestClient(t).offer()

	noData := newTestClient(t)
	noDataOffer := strings.Split(noData.offer(), "m=application")[0]

	tests := []struct {
		name   string
		do     func() *http.Response
		status int
		code   string
	}{
		{"no key", func() *http.Response { return postSDP(t, srv.URL, "", offer) }, 401, "invalid_api_key"},
		{"bad key", func() *http.Response { return postSDP(t, srv.URL, "Bearer ek_nope", offer) }, 401, "invalid_api_key"},
		{"bad key multipart", func() *http.Response { return postMultipart(t, srv.URL, "Bearer sk-nope", offer, "") }, 401, "invalid_api_key"},
		{"empty sdp", func() *http.Response { return postSDP(t, srv.URL, "Bearer ek_test", "") }, 400, "missing_required_parameter"},
		{"garbage sdp", func() *http.Response { return postSDP(t, srv.URL, "Bearer ek_test", "hello") }, 400, "invalid_offer"},
		{"no data channel", func() *http.Response { return postSDP(t, srv.URL, "Bearer ek_test", noDataOffer) }, 400, "invalid_offer"},
		{"opus only", func() *http.Response {
			return postSDP(t, srv.URL, "Bearer ek_test", withoutPCMU(offer))
		}, 400, "unsupported_codec"},
		{"multipart without sdp", func() *http.Response {
			return postMultipart(t, srv.URL, "Bearer sk-test", "", testSession)
		}, 400, "missing_required_parameter"},
		{"session not an object", func() *http.Response {
			return postMultipart(t, srv.URL, "Bearer sk-test", offer, `[1]`)
		}, 400, "invalid_json"},
		{"ephemeral key with session part", func() *http.Response {
			return postMultipart(t, srv.URL, "Bearer ek_test", offer, testSession)
		}, 400, "invalid_request"},
		{"json body", func() *http.Response {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/realtime/calls", strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer sk-test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 400, "unsupported_content_type"},
		{"GET", func() *http.Response {
			resp, err := http.Get(srv.URL + "/v1/realtime/calls")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertEnvelope(t, tt.do(), tt.status, tt.code)
		})
	}
	select {
	case fc := <-eng.started:
		t.Errorf("a failed request started call %s", fc.id)
	default:
	}
}

func TestErrorsDoNotEchoTheKey(t *testing.T) {
	_, srv := startFake(t)
	body := readBody(t, postSDP(t, srv.URL, "Bearer ek_secretvalue123", "v=0"))
	if strings.Contains(body, "secretvalue") {
		t.Errorf("error body echoes the key: %s", body)
	}
}

func TestConnectTimeoutEndsCall(t *testing.T) {
	checkGoroutines(t)
	eng := newFakeEngine()
	srv := httptest.NewServer(newHandler(eng.engine(), []Option{WithConnectTimeout(300 * time.Millisecond)}))
	defer srv.Close()
	client := newTestClient(t)
	resp := postSDP(t, srv.URL, "Bearer ek_test", client.offer())
	_ = readBody(t, resp)
	fc := <-eng.started
	// The client never applies the answer.
	select {
	case <-fc.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the call outlived its connect timeout")
	}
	if !errors.Is(fc.readErr, ErrConnectTimeout) {
		t.Errorf("ReadEvent error = %v, want ErrConnectTimeout", fc.readErr)
	}
	_ = client.pc.Close()
}

// withoutPCMU removes PCMU (static payload type 0) from the audio section.
func withoutPCMU(offer string) string {
	var out []string
	for _, line := range strings.Split(offer, "\r\n") {
		if strings.HasPrefix(line, "m=audio ") {
			f := strings.Fields(line)
			keep := f[:3]
			for _, pt := range f[3:] {
				if pt != "0" {
					keep = append(keep, pt)
				}
			}
			line = strings.Join(keep, " ")
		}
		if strings.HasPrefix(line, "a=rtpmap:0 ") || strings.HasPrefix(line, "a=fmtp:0 ") || strings.HasPrefix(line, "a=rtcp-fb:0 ") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\r\n")
}
