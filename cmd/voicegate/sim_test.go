package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestSimCommand(t *testing.T) {
	p := start(t, map[string]string{"VOICEGATE_API_KEY": "sk-sim-a,sk-sim-b", "VOICEGATE_PACE": "fast"}, "sim", "--addr", "127.0.0.1:0")
	if line := p.stdout.String(); !strings.Contains(line, "/v1") || !strings.Contains(line, "keys: 2") || !strings.Contains(line, "pace: fast") {
		t.Errorf("sim line %q", line)
	}
	ws := "ws" + strings.TrimPrefix(p.base, "http") + "/v1/realtime?model=gpt-realtime"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-sim-b"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(first), `"session.created"`) {
		t.Fatalf("first event %s %v", first, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if _, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-other-key-123456"}}}); err == nil || resp.StatusCode != 401 {
		t.Errorf("unknown key accepted: %v", resp)
	}
	// The WebRTC route is wired (not the 501 of a simulator without Calls).
	req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/realtime/calls", strings.NewReader("not sdp"))
	req.Header.Set("Authorization", "Bearer sk-sim-a")
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotImplemented || resp.StatusCode < 400 {
		t.Errorf("calls with a bad offer = %d %s", resp.StatusCode, body)
	}
	if strings.Contains(p.stderr.String(), "sk-other-key-123456") {
		t.Error("refused key in logs")
	}
}

func TestSimFlags(t *testing.T) {
	for _, args := range [][]string{{"--pace", "slow"}, {"--tls-cert", "x.pem"}, {"--session-max", "0s"}, {"extra"}} {
		err := run(context.Background(), append([]string{"sim"}, args...), func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("sim %v accepted", args)
		}
	}
	e := env{getenv: func(k string) string {
		return map[string]string{"VOICEGATE_SESSION_MAX": "90s", "VOICEGATE_FAULT_DROP_AFTER_EVENTS": "7", "VOICEGATE_ADDR": "127.0.0.1:9"}[k]
	}, stderr: io.Discard}
	c, err := parseSimFlags(e, []string{"--addr", "127.0.0.1:1", "--api-key", "sk-alpha", "--api-key", "sk-beta"})
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:1" || c.sessionMax != 90*time.Second || c.faults.DropAfterEvents != 7 || len(c.apiKeys) != 2 {
		t.Errorf("config = %+v", c)
	}
	if strings.Contains(c.apiKeys.String(), "sk-alpha") {
		t.Errorf("key list prints keys")
	}
}
