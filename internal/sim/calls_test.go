package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// pipeTransport is an in-memory AudioTransport standing in for a WebRTC
// call (internal/sim/simrtc tests the real one).
type pipeTransport struct {
	toServer chan []byte
	events   chan []byte
	audioIn  chan []byte
	mu       sync.Mutex
	played   int
	cleared  int
}

func newPipe() *pipeTransport {
	return &pipeTransport{toServer: make(chan []byte, 64), events: make(chan []byte, 4096), audioIn: make(chan []byte, 256)}
}

func (p *pipeTransport) ReadEvent(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.toServer:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeTransport) WriteEvent(ctx context.Context, b []byte) error {
	select {
	case p.events <- b:
		return nil
	default:
		return errors.New("pipe full")
	}
}

func (p *pipeTransport) InputAudio() <-chan []byte { return p.audioIn }

func (p *pipeTransport) WriteAudio(ctx context.Context, pcm []byte) error {
	p.mu.Lock()
	p.played += len(pcm)
	p.mu.Unlock()
	return nil
}

func (p *pipeTransport) ClearAudio() {
	p.mu.Lock()
	p.cleared++
	p.mu.Unlock()
}

func (p *pipeTransport) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-p.events:
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the call")
		return nil
	}
}

func (p *pipeTransport) until(t *testing.T, typ string) (map[string]any, []string) {
	t.Helper()
	var seen []string
	for {
		ev := p.next(t)
		if ev["type"] == typ {
			return ev, seen
		}
		seen = append(seen, ev["type"].(string))
	}
}

func TestCallSessionSidebandHangup(t *testing.T) {
	s, hs := startSim(t, Options{Pace: PaceFast})
	p := newPipe()
	id, err := s.StartCall(context.Background(), p, CallOptions{Session: json.RawMessage(`{"type":"realtime","model":"gpt-realtime-mini","instructions":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 4+32 || id[:4] != "rtc_" {
		t.Errorf("call id = %q", id)
	}
	created := p.next(t)
	if created["type"] != "session.created" || created["session"].(map[string]any)["model"] != "gpt-realtime-mini" {
		t.Fatalf("first call event = %v", created)
	}

	// A sideband with a server key sees the call's events and can send.
	sb, _, err := dial(t, wsURL(hs, "?call_id="+id), nil)
	if err != nil {
		t.Fatal(err)
	}
	sb.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "instructions": "from sideband"}})
	if upd, _ := sb.until("session.updated"); upd["session"].(map[string]any)["instructions"] != "from sideband" {
		t.Errorf("sideband update = %v", upd)
	}
	p.until(t, "session.updated")

	// Media in, media out: VAD on InputAudio, audio through WriteAudio.
	for _, chunk := range [][]byte{speech(600), silence(600)} {
		for i := 0; i < len(chunk); i += 960 {
			p.audioIn <- chunk[i:min(i+960, len(chunk))]
		}
	}
	done, seen := p.until(t, "response.done")
	for _, w := range []string{"input_audio_buffer.speech_started", "input_audio_buffer.committed", "output_audio_buffer.started", "response.output_audio_transcript.delta", "output_audio_buffer.stopped"} {
		if indexOf(seen, w) < 0 {
			t.Errorf("call flow lacks %s: %v", w, seen)
		}
	}
	if indexOf(seen, "response.output_audio.delta") >= 0 {
		t.Errorf("audio deltas sent on the data channel")
	}
	tr := done["response"].(map[string]any)["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["transcript"].(string)
	p.mu.Lock()
	played := p.played
	p.mu.Unlock()
	if played != outputAudioMs(tr)*48 {
		t.Errorf("played %d bytes, want %d", played, outputAudioMs(tr)*48)
	}
	if _, seenSB := sb.until("response.done"); indexOf(seenSB, "output_audio_buffer.started") < 0 {
		t.Errorf("sideband missed events: %v", seenSB)
	}

	// An ephemeral key cannot attach; unknown ids are 404.
	if _, resp, err := dial(t, wsURL(hs, "?call_id=rtc_00000000000000000000000000000000"), nil); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown call attach: %v", resp)
	}

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/realtime/calls/"+id+"/hangup", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("hangup: %v %v", resp, err)
	}
	if _, _, err := sb.c.Read(sb.ctx); err == nil {
		t.Errorf("sideband still open after hangup")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.call(id) != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Hangup(id); !errors.Is(err, ErrCallNotFound) {
		t.Errorf("second Hangup = %v, want ErrCallNotFound", err)
	}
}

func TestCallsRouteWithoutWebRTC(t *testing.T) {
	_, hs := startSim(t, Options{})
	resp, m := postJSON(t, hs.URL+"/v1/realtime/calls", testKey, nil)
	if resp.StatusCode != http.StatusNotImplemented || m["error"] == nil {
		t.Errorf("calls = %d %v", resp.StatusCode, m)
	}
}

func TestOutputAudioBufferClearOnCall(t *testing.T) {
	s, _ := startSim(t, Options{})
	p := newPipe()
	id, err := s.StartCall(context.Background(), p, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Hangup(id)
	p.next(t)
	p.toServer <- []byte(`{"type":"response.create"}`)
	started, _ := p.until(t, "output_audio_buffer.started")
	p.toServer <- []byte(`{"type":"response.cancel"}`)
	cleared, _ := p.until(t, "output_audio_buffer.cleared")
	if cleared["response_id"] != started["response_id"] {
		t.Errorf("cleared %v, started %v", cleared, started)
	}
	if done, _ := p.until(t, "response.done"); done["response"].(map[string]any)["status"] != "cancelled" {
		t.Errorf("done = %v", done)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cleared == 0 {
		t.Errorf("ClearAudio not called")
	}
}
