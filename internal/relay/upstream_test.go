package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
)

// fakeUpstream is a small scripted Realtime API: enough of the GA/beta event
// flow to exercise the relay, with its own ledger of every response.done it
// emitted and fault knobs. Usage is deterministic: input audio 10 tokens per
// second of appended PCM16 24 kHz (4,800 bytes), 12 text tokens in, 5 text
// and 20 audio tokens out per delta batch, 4 cached text tokens.
type fakeUpstream struct {
	key           string
	deltas        int           // audio deltas per response
	deltaInterval time.Duration // pause between deltas
	dropMid       bool          // abrupt close after the first delta
	closeOn       string        // client event type that makes upstream close 4001 "custom close"
	dupDone       bool          // send every response.done twice
	holdUpdate    chan struct{} // when set, session.updated waits for it to close
	refuseUpdate  bool          // answer session.update with an invalid_value error
	ignoreCancel  bool          // never answer response.cancel
	burstDelta    string        // when set: a response's deltas carry this base64 audio and are sent back to back

	mu      sync.Mutex
	ledger  []fakeEntry
	headers []http.Header
	queries []string
	updates [][]byte               // session.update frames received
	events  []string               // client event types received
	closes  []websocket.StatusCode // close codes received from the gateway
}

func (f *fakeUpstream) Closes() []websocket.StatusCode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]websocket.StatusCode(nil), f.closes...)
}

// waitCloses waits briefly for the upstream side to notice a close: it
// happens on the fake's own goroutine, after the gateway's Serve returned.
func (f *fakeUpstream) waitCloses(t *testing.T) []websocket.StatusCode {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.Closes()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return f.Closes()
}

func (f *fakeUpstream) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

type fakeEntry struct {
	SessionID, ResponseID, Model, Status string
	Usage                                realtime.Usage
}

func (f *fakeUpstream) Ledger() []fakeEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeEntry(nil), f.ledger...)
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	f.queries = append(f.queries, r.URL.RawQuery)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key","param":null}}`))
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
	if err != nil {
		return
	}
	c.SetReadLimit(16 << 20)
	beta := r.Header.Get("OpenAI-Beta") == "realtime=v1"
	model := r.URL.Query().Get("model")
	(&fakeSession{f: f, c: c, beta: beta, model: model, id: realtime.NewID("sess_")}).run(r.Context())
}

type fakeSession struct {
	f         *fakeUpstream
	c         *websocket.Conn
	beta      bool
	model, id string
	session   map[string]any
	appended  int
	active    string // in-flight response id
	sent      int    // deltas sent of the active response
}

func (s *fakeSession) send(ctx context.Context, ev map[string]any) error {
	ev["event_id"] = realtime.NewID("event_")
	b, _ := json.Marshal(ev)
	return s.c.Write(ctx, websocket.MessageText, b)
}

func (s *fakeSession) run(ctx context.Context) {
	defer s.c.CloseNow()
	if s.beta {
		s.session = map[string]any{"id": s.id, "object": "realtime.session", "model": s.model, "instructions": "default", "voice": "alloy", "modalities": []string{"audio", "text"}}
	} else {
		s.session = map[string]any{"type": "realtime", "object": "realtime.session", "id": s.id, "model": s.model, "instructions": "default",
			"audio": map[string]any{"output": map[string]any{"voice": "alloy"}}}
	}
	if s.send(ctx, map[string]any{"type": "session.created", "session": s.session}) != nil {
		return
	}
	in := make(chan []byte)
	go func() {
		defer close(in)
		for {
			_, b, err := s.c.Read(ctx)
			if err != nil {
				s.f.mu.Lock()
				s.f.closes = append(s.f.closes, websocket.CloseStatus(err))
				s.f.mu.Unlock()
				return
			}
			select {
			case in <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		if s.active != "" && s.f.burstDelta != "" {
			if !s.burst(ctx) {
				return
			}
			continue
		}
		var tick <-chan time.Time
		if s.active != "" {
			tick = time.After(s.f.deltaInterval)
		}
		select {
		case b, ok := <-in:
			if !ok {
				return
			}
			if !s.handle(ctx, b) {
				return
			}
		case <-tick:
			if !s.step(ctx) {
				return
			}
		}
	}
}

func (s *fakeSession) handle(ctx context.Context, b []byte) bool {
	var ev map[string]any
	if json.Unmarshal(b, &ev) != nil {
		return s.send(ctx, map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": "invalid_event", "message": "bad json"}}) == nil
	}
	typ, _ := ev["type"].(string)
	s.f.mu.Lock()
	s.f.events = append(s.f.events, typ)
	if typ == "session.update" {
		s.f.updates = append(s.f.updates, b)
	}
	s.f.mu.Unlock()
	if s.f.closeOn != "" && typ == s.f.closeOn {
		_ = s.c.Close(4001, "custom close")
		return false
	}
	switch typ {
	case "session.update":
		if s.f.holdUpdate != nil {
			<-s.f.holdUpdate
		}
		if s.f.refuseUpdate {
			return s.send(ctx, map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": "invalid_value", "message": "Invalid value", "event_id": ev["event_id"]}}) == nil
		}
		upd, _ := ev["session"].(map[string]any)
		for k, v := range upd {
			s.session[k] = v
		}
		return s.send(ctx, map[string]any{"type": "session.updated", "session": s.session}) == nil
	case "input_audio_buffer.append":
		a, _ := ev["audio"].(string)
		s.appended += len(a) * 3 / 4
		return true
	case "input_audio_buffer.commit":
		return s.send(ctx, map[string]any{"type": "input_audio_buffer.committed", "item_id": realtime.NewID("item_")}) == nil
	case "conversation.item.create":
		name := "conversation.item.added"
		if s.beta {
			name = "conversation.item.created"
		}
		return s.send(ctx, map[string]any{"type": name, "item": ev["item"]}) == nil
	case "response.create":
		if s.active != "" {
			return s.send(ctx, map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": "conversation_already_has_active_response", "message": "busy", "event_id": ev["event_id"]}}) == nil
		}
		s.active, s.sent = realtime.NewID("resp_"), 0
		return s.send(ctx, map[string]any{"type": "response.created", "response": map[string]any{"id": s.active, "object": "realtime.response", "status": "in_progress", "usage": nil}}) == nil
	case "response.cancel":
		if s.f.ignoreCancel {
			return true
		}
		if s.active == "" {
			return s.send(ctx, map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": "response_cancel_not_active", "message": "Cancellation failed: no active response found"}}) == nil
		}
		return s.done(ctx, "cancelled")
	}
	return true
}

// burst sends every delta of the active response back to back, each frame
// built once, then its response.done.
func (s *fakeSession) burst(ctx context.Context) bool {
	name := "response.output_audio.delta"
	if s.beta {
		name = "response.audio.delta"
	}
	frame, _ := json.Marshal(map[string]any{"type": name, "event_id": realtime.NewID("event_"), "response_id": s.active,
		"item_id": "item_burst", "output_index": 0, "content_index": 0, "delta": s.f.burstDelta})
	for s.sent < s.f.deltas {
		s.sent++
		if s.c.Write(ctx, websocket.MessageText, frame) != nil {
			return false
		}
	}
	return s.done(ctx, "completed")
}

// step emits the next delta of the active response, or its response.done.
func (s *fakeSession) step(ctx context.Context) bool {
	if s.sent < s.f.deltas {
		s.sent++
		name := "response.output_audio.delta"
		if s.beta {
			name = "response.audio.delta"
		}
		if s.send(ctx, map[string]any{"type": name, "response_id": s.active, "delta": "AAAAAAAAAAAAAAAA"}) != nil {
			return false
		}
		if s.f.dropMid {
			_ = s.c.CloseNow()
			return false
		}
		return true
	}
	return s.done(ctx, "completed")
}

func (s *fakeSession) done(ctx context.Context, status string) bool {
	audioIn := int64(s.appended / 4800)
	s.appended = 0
	u := realtime.Usage{
		InputTokens: 12 + audioIn, OutputTokens: int64(25 * s.sent),
		InputTokenDetails: realtime.InputTokenDetails{TextTokens: 12, AudioTokens: audioIn, CachedTokens: 4,
			CachedTokensDetails: realtime.CachedTokensDetails{TextTokens: 4}},
		OutputTokenDetails: realtime.OutputTokenDetails{TextTokens: int64(5 * s.sent), AudioTokens: int64(20 * s.sent)},
	}
	u.TotalTokens = u.InputTokens + u.OutputTokens
	id := s.active
	s.active = ""
	s.f.mu.Lock()
	s.f.ledger = append(s.f.ledger, fakeEntry{SessionID: s.id, ResponseID: id, Model: s.model, Status: status, Usage: u})
	s.f.mu.Unlock()
	done := map[string]any{"type": "response.done", "response": map[string]any{"id": id, "object": "realtime.response", "status": status, "usage": u}}
	if s.f.dupDone && s.send(ctx, done) != nil {
		return false
	}
	return s.send(ctx, done) == nil
}

func TestFakeUpstreamRejectsBadKey(t *testing.T) {
	f := &fakeUpstream{key: "sk-good"}
	rec := newRecorder()
	req, _ := http.NewRequest("GET", "/v1/realtime", nil)
	req.Header.Set("Authorization", "Bearer sk-bad")
	f.ServeHTTP(rec, req)
	if rec.code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.code)
	}
}

type recorder struct {
	h    http.Header
	code int
}

func newRecorder() *recorder                    { return &recorder{h: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(c int)           { r.code = c }
