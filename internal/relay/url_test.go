package relay

import (
	"net/url"
	"testing"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
)

func TestRealtimeURL(t *testing.T) {
	q := url.Values{"model": {"gpt-realtime"}}
	tests := []struct{ base, want string }{
		{"https://api.openai.com/v1", "wss://api.openai.com/v1/realtime?model=gpt-realtime"},
		{"https://api.openai.com/v1/", "wss://api.openai.com/v1/realtime?model=gpt-realtime"},
		{"http://127.0.0.1:8090/v1", "ws://127.0.0.1:8090/v1/realtime?model=gpt-realtime"},
		{"wss://gw.example.com/openai/v1", "wss://gw.example.com/openai/v1/realtime?model=gpt-realtime"},
	}
	for _, tc := range tests {
		got, err := realtimeURL(tc.base, q)
		if err != nil || got != tc.want {
			t.Errorf("realtimeURL(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
	if _, err := realtimeURL("ftp://x", q); err == nil {
		t.Error("ftp accepted")
	}
}

// TestRealtimeURLForwardsOnlyModelAndIntent: call_id (a sideband on
// someone's WebRTC call, with the server key) and any other parameter of
// the client stay at the gateway.
func TestRealtimeURLForwardsOnlyModelAndIntent(t *testing.T) {
	q := url.Values{"model": {"gpt-realtime"}, "intent": {"transcription"}, "call_id": {"rtc_victim"}, "api-key": {"x"}, "debug": {"1"}}
	got, err := realtimeURL("https://api.openai.com/v1", q)
	if want := "wss://api.openai.com/v1/realtime?intent=transcription&model=gpt-realtime"; err != nil || got != want {
		t.Errorf("realtimeURL = %q, %v; want %q", got, err, want)
	}
}

func TestSendable(t *testing.T) {
	tests := map[websocket.StatusCode]websocket.StatusCode{
		1000: 1000, 1001: 1001, 1008: 1008, 1011: 1011, 4001: 4001, 3000: 3000,
		-1: 1000, 1005: 1000, 1006: 1000, 1015: 1000, 2000: 1000, 5000: 1000,
	}
	for in, want := range tests {
		if got := sendable(in); got != want {
			t.Errorf("sendable(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestPinnedConfigRefused(t *testing.T) {
	up := &fakeUpstream{refuseUpdate: true}
	h := newHarness(t, up, nil)
	ctx, c := h.connect()
	ce, errs := c.closed(ctx)
	if ce.Code != websocket.StatusInternalError || len(errs) != 1 || errs[0].Error.Code != "upstream_unavailable" {
		t.Errorf("close %v, errors %+v; want 1011 upstream_unavailable", ce, errs)
	}
	for _, f := range c.frames {
		if typ, _ := realtime.EventType([]byte(f)); typ != "error" {
			t.Errorf("unexpected frame before the refusal: %s", f)
		}
	}
	h.waitServed()
	if ev := up.Events(); len(ev) != 1 || ev[0] != "session.update" {
		t.Errorf("upstream events = %v", ev)
	}
}
