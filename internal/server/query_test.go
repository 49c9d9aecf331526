package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRealtimeQueryFiltered: a client's call_id is refused with 400 before
// any upgrade; intent is accepted only on transcription sessions; other
// parameters never reach the relay (and so never upstream).
func TestRealtimeQueryFiltered(t *testing.T) {
	e := newEnv(t, nil)
	connect := func(tok, query string) (*websocket.Conn, int, map[string]any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, e.wsURL()+query, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode, nil
		}
		return c, http.StatusSwitchingProtocols, nil
	}
	tok := e.mint(map[string]any{"session": map[string]any{"type": "realtime", "model": "gpt-realtime"}})["value"].(string)
	for _, q := range []string{"?model=gpt-realtime&call_id=rtc_123", "?call_id=rtc_123", "?model=gpt-realtime&intent=transcription", "?intent=x"} {
		if c, code, _ := connect(tok, q); code != http.StatusBadRequest {
			if c != nil {
				c.CloseNow()
			}
			t.Errorf("%s: status %d, want 400", q, code)
		}
	}
	c, code, _ := connect(tok, "?model=gpt-realtime&debug=1&foo=bar")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("plain connect: %d", code)
	}
	<-e.relay.got
	e.relay.mu.Lock()
	q := e.relay.query
	e.relay.mu.Unlock()
	if len(q) != 1 || q.Get("model") != "gpt-realtime" {
		t.Errorf("query handed to the relay = %v, want only model", q)
	}
	c.Close(websocket.StatusNormalClosure, "")
}
