package money

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/voicegate/voicegate/internal/sim"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/realtime"
)

// event is what the suite keeps of one server event.
type event struct {
	Type       string
	ResponseID string // response.id, or response_id
	Status     string // response.status
	Code       string // error.code
	ErrEventID string // error.event_id
	Usage      *realtime.Usage
	raw        string // the whole event; "" for audio deltas (they are large)
}

// decodeEvent parses the fields of a server event the suite acts on.
func decodeEvent(data []byte) event {
	head := data
	if len(head) > 80 {
		head = head[:80]
	}
	if bytes.Contains(head, []byte(`"response.output_audio.delta"`)) || bytes.Contains(head, []byte(`"response.audio.delta"`)) {
		ev := event{Type: "response.output_audio.delta"}
		if i := bytes.Index(data, []byte(`"response_id":"`)); i >= 0 {
			rest := data[i+len(`"response_id":"`):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				ev.ResponseID = string(rest[:j])
			}
		}
		return ev
	}
	var w struct {
		Type       string `json:"type"`
		ResponseID string `json:"response_id"`
		Response   *struct {
			ID     string          `json:"id"`
			Status string          `json:"status"`
			Usage  *realtime.Usage `json:"usage"`
		} `json:"response"`
		Error *struct {
			Code    string `json:"code"`
			EventID string `json:"event_id"`
		} `json:"error"`
	}
	json.Unmarshal(data, &w)
	ev := event{Type: w.Type, ResponseID: w.ResponseID, raw: string(data)}
	if w.Response != nil {
		ev.ResponseID, ev.Status, ev.Usage = w.Response.ID, w.Response.Status, w.Response.Usage
	}
	if w.Error != nil {
		ev.Code, ev.ErrEventID = w.Error.Code, w.Error.EventID
	}
	return ev
}

func (e event) String() string {
	if e.raw != "" {
		if len(e.raw) > 400 {
			return e.raw[:400] + "…"
		}
		return e.raw
	}
	return e.Type + " " + e.ResponseID
}

// client is one Realtime WebSocket through the gateway. A reader goroutine
// keeps every server event; until waits for the next one that matches.
type client struct {
	conn *websocket.Conn

	mu      sync.Mutex
	events  []event
	wake    chan struct{} // closed and replaced on every new event
	cursor  int
	done    chan struct{} // closed when the reader ends
	readErr error

	// dones are the response.done events received, in order.
	dones []event
}

// connect opens a Realtime WebSocket for m on g with the token as
// Authorization: Bearer, and waits for session.created.
func connect(t testing.TB, g *gateway, m minted, name string) *client {
	t.Helper()
	c, err := dial(g, m)
	if err != nil {
		t.Fatalf("%s: connect on gateway %s: %v", name, g.name, err)
	}
	cl := &client{conn: c, wake: make(chan struct{}), done: make(chan struct{})}
	go cl.read() // owner: client; exits when the connection ends
	t.Cleanup(func() { c.CloseNow(); <-cl.done })
	if _, ok := cl.until(10*time.Second, is("session.created")); !ok {
		t.Fatalf("%s: no session.created on gateway %s: %v; events %v", name, g.name, cl.err(), cl.all())
	}
	return cl
}

func dial(g *gateway, m minted) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+m.tok)
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url(), "http")+"/v1/realtime?model="+model,
		&websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return nil, fmt.Errorf("HTTP %d: %w", code, err)
	}
	c.SetReadLimit(64 << 20)
	return c, nil
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			close(c.wake)
			c.wake = make(chan struct{})
			c.mu.Unlock()
			return
		}
		ev := decodeEvent(data)
		c.mu.Lock()
		c.events = append(c.events, ev)
		if ev.Type == "response.done" {
			c.dones = append(c.dones, ev)
		}
		close(c.wake)
		c.wake = make(chan struct{})
		c.mu.Unlock()
	}
}

// pred matches an event.
type pred func(event) bool

func is(types ...string) pred {
	return func(e event) bool {
		for _, t := range types {
			if e.Type == t {
				return true
			}
		}
		return false
	}
}

func isError(code string) pred {
	return func(e event) bool { return e.Type == "error" && e.Code == code }
}

// until waits up to d for the next event (after the last one until
// returned) that matches p. It reports false when the connection ended or
// d passed first.
func (c *client) until(d time.Duration, p pred) (event, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i := c.cursor; i < len(c.events); i++ {
			if p(c.events[i]) {
				c.cursor = i + 1
				ev := c.events[i]
				c.mu.Unlock()
				return ev, true
			}
		}
		wake := c.wake
		closed := c.readErr != nil
		c.mu.Unlock()
		if closed {
			return event{}, false
		}
		select {
		case <-wake:
		case <-deadline.C:
			return event{}, false
		}
	}
}

// seen reports whether any event so far matches p (without moving the
// cursor).
func (c *client) seen(p pred) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if p(e) {
			return true
		}
	}
	return false
}

// closed reports whether the connection has ended.
func (c *client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *client) err() error { c.mu.Lock(); defer c.mu.Unlock(); return c.readErr }

// all is every event received (for failure messages), audio deltas elided.
func (c *client) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	deltas := 0
	for _, e := range c.events {
		if e.raw == "" {
			deltas++
			continue
		}
		if deltas > 0 {
			out = append(out, fmt.Sprintf("(%d audio deltas)", deltas))
			deltas = 0
		}
		s := e.raw
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		out = append(out, s)
	}
	if len(out) > 40 {
		out = append([]string{fmt.Sprintf("… %d earlier", len(out)-40)}, out[len(out)-40:]...)
	}
	return out
}

// received is every response.done the client got.
func (c *client) received() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event(nil), c.dones...)
}

// send writes one client event (a JSON string or a value to marshal). It
// reports false when the connection is gone.
func (c *client) send(v any) bool {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		b, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, b) == nil
}

// closeNormal closes with 1000 (coder/websocket waits, bounded, for the
// peer's close frame).
func (c *client) closeNormal() {
	c.conn.Close(websocket.StatusNormalClosure, "")
}

// drop closes the TCP connection without a close frame.
func (c *client) drop() { c.conn.CloseNow() }

// The outcome of waiting for a response.
type outcome int

const (
	gotDone    outcome = iota // response.done
	gotBudget                 // error budget_exceeded
	gotClosed                 // the connection ended
	gotError                  // another error event
	gotTimeout                // nothing within the deadline
)

func (o outcome) String() string {
	return [...]string{"response.done", "budget_exceeded", "closed", "error", "timeout"}[o]
}

// waitResponse waits for the next response.done, error or close.
func (c *client) waitResponse(d time.Duration) (event, outcome) {
	ev, ok := c.until(d, is("response.done", "error"))
	switch {
	case !ok && c.closed():
		return ev, gotClosed
	case !ok:
		return ev, gotTimeout
	case ev.Type == "response.done":
		return ev, gotDone
	case ev.Code == "budget_exceeded":
		return ev, gotBudget
	}
	return ev, gotError
}

// Client events.

func textItem(text string) string {
	b, _ := json.Marshal(map[string]any{"type": "conversation.item.create", "item": map[string]any{
		"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": text}}}})
	return string(b)
}

const responseCreate = `{"type":"response.create"}`

func responseCreateWith(resp map[string]any) string {
	b, _ := json.Marshal(map[string]any{"type": "response.create", "response": resp})
	return string(b)
}

func appendEvent(b64 string) string {
	return `{"type":"input_audio_buffer.append","audio":"` + b64 + `"}`
}

// Audio. Formats are the GA names: "pcm" (PCM16 24 kHz), "pcmu", "pcma"
// (G.711 at 8 kHz, one byte per sample).

func formatObject(f string) map[string]any {
	if f == "pcm" {
		return map[string]any{"type": "audio/pcm", "rate": 24000}
	}
	return map[string]any{"type": "audio/" + f}
}

func sampleRate(f string) int {
	if f == "pcm" {
		return 24000
	}
	return 8000
}

// speech is ms of a loud, speech-like tone (as e2e/gw_common.mjs: a 200 Hz
// tone at 0.2–0.4 of full scale, modulated at 2 Hz), far above the
// simulator's VAD threshold; silent is ms of digital silence.
func speech(ms int, f string) []byte { return synth(ms, f, true) }
func silent(ms int, f string) []byte { return synth(ms, f, false) }

func synth(ms int, f string, loud bool) []byte {
	rate := sampleRate(f)
	n := rate * ms / 1000
	var out []byte
	for i := range n {
		var s int16
		if loud {
			tt := float64(i) / float64(rate)
			e := 0.5 + 0.5*math.Abs(math.Sin(2*math.Pi*2*tt))
			s = int16(math.Round(e * 0.4 * math.Sin(2*math.Pi*200*tt) * 32767))
		}
		switch f {
		case "pcm":
			out = binary.LittleEndian.AppendUint16(out, uint16(s))
		case "pcmu":
			out = append(out, sim.MuLaw(s))
		case "pcma":
			out = append(out, sim.ALaw(s))
		}
	}
	return out
}

// appends cuts audio into chunkMs pieces and returns their append events.
func appends(audio []byte, f string, chunkMs int) []string {
	per := sampleRate(f) * chunkMs / 1000
	if f == "pcm" {
		per *= 2
	}
	var out []string
	for i := 0; i < len(audio); i += per {
		out = append(out, appendEvent(base64.StdEncoding.EncodeToString(audio[i:min(i+per, len(audio))])))
	}
	return out
}

// speechAppends returns append events for ms of speech in chunkMs pieces;
// the tone repeats every second, so long speech reuses one second.
func speechAppends(ms int, f string, chunkMs int) []string {
	if ms <= 1000 || 1000%chunkMs != 0 {
		return appends(speech(ms, f), f, chunkMs)
	}
	sec := appends(speech(1000, f), f, chunkMs)
	var out []string
	for range ms / 1000 {
		out = append(out, sec...)
	}
	return append(out, appends(speech(ms%1000, f), f, chunkMs)...)
}
