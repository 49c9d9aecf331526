package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

const testAdmin = "admin-key-for-tests-0123456789abcdef"

// fakeRelay accepts the WebSocket and holds it until CloseSessions or the
// client closes; it stands in for internal/relay in server tests.
type fakeRelay struct {
	mu    sync.Mutex
	live  map[string]*fakeConn
	got   chan *store.Session
	query url.Values
	beta  bool
	sid   string
}

type fakeConn struct {
	s *store.Session
	c *websocket.Conn
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{live: map[string]*fakeConn{}, got: make(chan *store.Session, 16)}
}

func (f *fakeRelay) ServeSession(w http.ResponseWriter, r *http.Request, s *store.Session, beta bool, q url.Values, sid string) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
	if err != nil {
		return
	}
	f.mu.Lock()
	f.live[s.ID] = &fakeConn{s: s, c: c}
	f.query, f.beta, f.sid = q, beta, sid
	f.mu.Unlock()
	f.got <- s
	_ = c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"session.created"}`))
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			break
		}
	}
	f.mu.Lock()
	delete(f.live, s.ID)
	f.mu.Unlock()
}

func (f *fakeRelay) CloseSessions(match func(*store.Session) bool, code websocket.StatusCode, reason, msg string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id, fc := range f.live {
		if match(fc.s) {
			delete(f.live, id) // closing: a second CloseSessions finds nothing, like the relay
			ev, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "voicegate_error", "code": reason, "message": msg}})
			_ = fc.c.Write(context.Background(), websocket.MessageText, ev)
			go fc.c.Close(code, reason)
			n++
		}
	}
	return n
}

func (f *fakeRelay) IsLive(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[id] != nil
}

func (f *fakeRelay) Shutdown(context.Context) error { return nil }

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	st    store.Store
	down  *downStore // the server's view of st, failing while down is set
	relay *fakeRelay
	clock *clock
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, mod func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.AdminKey = testAdmin
	cfg.Store = "memory"
	cfg.Tiers["pro"] = config.Tier{TTLMaxSeconds: 900, Models: []string{"gpt-realtime-mini"}, Transcription: true, BudgetUSD: 5, MaxSessionSeconds: 600}
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	e := &env{t: t, st: st, down: &downStore{Store: st}, relay: newFakeRelay(), clock: &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}, logs: logs}
	// The server gets the store through downStore from the start: a test
	// takes it down by a flag, not by swapping a field the server's
	// goroutines read.
	e.srv = NewServer(Deps{Config: cfg, Store: e.down, Relay: e.relay, Now: e.clock.Now, Instance: "test-1",
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e.ts = httptest.NewServer(e.srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.WatchRevocations(ctx) }()
	t.Cleanup(func() { e.ts.Close(); cancel(); <-done })
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (e *env) Logs() string {
	return e.logs.String()
}

// do sends a JSON request and decodes the JSON answer.
func (e *env) do(method, path, bearer string, body any, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// mint mints with the admin key and returns the response.
func (e *env) mint(body any) map[string]any {
	e.t.Helper()
	code, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, body)
	if code != 200 {
		e.t.Fatalf("mint: %d %v", code, out)
	}
	return out
}

// errOf extracts (code, param) of an error envelope.
func errOf(out map[string]any) (string, any) {
	e, _ := out["error"].(map[string]any)
	if e == nil {
		return "", nil
	}
	if _, ok := e["message"].(string); !ok {
		return "no-message", nil
	}
	if _, ok := e["type"].(string); !ok {
		return "no-type", nil
	}
	code, _ := e["code"].(string)
	return code, e["param"]
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/v1/realtime" }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
