package sim

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testKey = "sk-test-0123456789abcdef"

func startSim(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = []string{testKey}
	}
	s := New(opts)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { _ = s.Close(); hs.Close() })
	return s, hs
}

func wsURL(hs *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/realtime" + query
}

type client struct {
	t   *testing.T
	c   *websocket.Conn
	ctx context.Context
}

func dial(t *testing.T, url string, hdr http.Header, protos ...string) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if hdr == nil {
		hdr = http.Header{"Authorization": {"Bearer " + testKey}}
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: protos})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(readLimit)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &client{t: t, c: c, ctx: ctx}, resp, nil
}

func mustDial(t *testing.T, hs *httptest.Server, query string) *client {
	t.Helper()
	c, _, err := dial(t, wsURL(hs, query), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if ev := c.next(); ev["type"] != "session.created" {
		t.Fatalf("first event = %v, want session.created", ev["type"])
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.c.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) next() map[string]any {
	c.t.Helper()
	_, b, err := c.c.Read(c.ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// until reads events up to and including one of type typ; it returns that
// event and the types seen before it.
func (c *client) until(typ string) (map[string]any, []string) {
	c.t.Helper()
	var seen []string
	for {
		ev := c.next()
		if ev["type"] == typ {
			return ev, seen
		}
		if ev["type"] == "error" && typ != "error" {
			c.t.Fatalf("unexpected error event %v (seen %v)", ev["error"], seen)
		}
		seen = append(seen, ev["type"].(string))
	}
}

func (c *client) update(session map[string]any) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"type": "session.update", "session": session})
	ev, _ := c.until("session.updated")
	return ev["session"].(map[string]any)
}

// speech is a 200 Hz tone with 4 Hz amplitude modulation: PCM16 24 kHz.
func speech(ms int) []byte {
	n := 24 * ms
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		t := float64(i) / 24000
		v := (0.5 + 0.5*math.Abs(math.Sin(2*math.Pi*2*t))) * 0.4 * math.Sin(2*math.Pi*200*t)
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(v*32767)))
	}
	return b
}

func silence(ms int) []byte { return make([]byte, 48*ms) }

func (c *client) appendAudio(pcm []byte, chunk int) {
	c.t.Helper()
	step := chunk * 48
	for i := 0; i < len(pcm); i += step {
		end := min(i+step, len(pcm))
		c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(pcm[i:end])})
	}
}

func usageOf(t *testing.T, done map[string]any) map[string]any {
	t.Helper()
	u, ok := done["response"].(map[string]any)["usage"].(map[string]any)
	if !ok {
		t.Fatalf("response.done without usage: %v", done)
	}
	return u
}

func num(m map[string]any, path ...string) int {
	for _, p := range path[:len(path)-1] {
		m, _ = m[p].(map[string]any)
	}
	f, _ := m[path[len(path)-1]].(float64)
	return int(f)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
