package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// serveOn runs e's handler through Serve (the production http.Server) with
// short timeouts, and returns its base URL.
func serveOn(t *testing.T, e *env, o ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.srv, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestWebSocketOutlivesHTTPTimeouts: a WebSocket served through Serve with
// read and write timeouts of 100 ms still carries frames and pings after
// several of them (its hijacked connection's deadlines are cleared).
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	e := newEnv(t, nil)
	base := serveOn(t, e, ServeOptions{ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})
	tok := e.mint(map[string]any{})["value"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+base[len("http"):]+"/v1/realtime", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil { // session.created
		t.Fatal(err)
	}
	<-e.relay.got
	// Outlive the timeouts several times over: this wait is what is tested.
	<-time.After(500 * time.Millisecond)
	go func() { // the client reads so its pings get their pongs
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the HTTP timeouts: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"x"}`)); err != nil {
		t.Fatalf("write after the HTTP timeouts: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// TestIdleKeepAliveClosed: a keep-alive connection left idle is closed by
// the server after IdleTimeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	e := newEnv(t, nil)
	base := serveOn(t, e, ServeOptions{IdleTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // failure bound only
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}
}

// TestHugeRequestLineRefused: a request line and headers over 64 KiB are
// refused before any handler runs (no audit row, no log line).
func TestHugeRequestLineRefused(t *testing.T) {
	e := newEnv(t, nil)
	base := serveOn(t, e, ServeOptions{})
	req, _ := http.NewRequest("GET", base+"/voicegate/v1/sessions/"+string(make([]byte, 0))+repeatA(200<<10), nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

func repeatA(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A'
	}
	return string(b)
}
