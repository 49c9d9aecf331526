package relay

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/policy"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

const (
	serverKey   = "sk-test-server-key-0123456789"
	clientToken = "ek_vg_clienttoken0123456789abcdef"
	pinnedCfg   = `{"type":"realtime","model":"gpt-realtime","instructions":"You are pinned.","audio":{"output":{"voice":"marin"}}}`
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is an upstream, a relay in front of it and a gateway server
// whose handler plays the server helper's part: it builds a Conn from a
// test session and calls Serve.
type harness struct {
	t     testing.TB
	up    *fakeUpstream
	upSrv *httptest.Server
	st    *memory.Store
	relay *Relay
	reg   *prometheus.Registry
	gw    *httptest.Server
	logs  *syncBuffer
	sess  *store.Session
	done  chan struct{} // one value per finished Serve
}

func newHarness(t testing.TB, up *fakeUpstream, edit func(*store.Session)) *harness {
	t.Helper()
	if up.key == "" {
		up.key = serverKey
	}
	h := &harness{t: t, up: up, st: memory.New(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}, done: make(chan struct{}, 16)}
	h.upSrv = httptest.NewServer(up)
	t.Cleanup(h.upSrv.Close)
	h.relay = &Relay{
		Upstream:    h.upSrv.URL + "/v1",
		APIKey:      serverKey,
		Governor:    &govern.Governor{Store: h.st, Tiers: map[string]policy.Tier{"default": openTier()}, Metrics: govern.NewMetrics(h.reg)},
		Logger:      slog.New(slog.NewJSONHandler(h.logs, nil)),
		Metrics:     NewMetrics(h.reg),
		Instance:    "test-1",
		AbandonWait: 2 * time.Second,
	}
	h.relay.Governor.Logger = h.relay.Logger
	now := time.Now()
	h.sess = &store.Session{
		ID: "vgs_test1", TokenHash: "deadbeef", TokenID: "tok_abc", User: "alice", Tier: "default",
		AppKeyID: "key_1", Model: "gpt-realtime", Config: json.RawMessage(pinnedCfg),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), State: store.StateMinted,
	}
	if edit != nil {
		edit(h.sess)
	}
	if err := h.st.CreateSession(context.Background(), h.sess); err != nil {
		t.Fatal(err)
	}
	h.gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, err := h.st.Session(r.Context(), h.sess.ID)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		beta := r.Header.Get("OpenAI-Beta") == "realtime=v1"
		for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
			beta = beta || strings.TrimSpace(p) == "openai-beta.realtime-v1"
		}
		h.relay.Serve(w, r, Conn{Session: rec, Beta: beta, Query: r.URL.Query(), SafetyID: "sid-hash-alice"})
		h.done <- struct{}{}
	}))
	t.Cleanup(h.gw.Close)
	return h
}

func (h *harness) dial(ctx context.Context, protos ...string) *websocket.Conn {
	h.t.Helper()
	if len(protos) == 0 {
		protos = []string{"realtime", "openai-insecure-api-key." + clientToken}
	}
	c, resp := dialClient(ctx, h.t, h.gw, "/v1/realtime?model=gpt-realtime", &websocket.DialOptions{Subprotocols: protos})
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "realtime" {
		h.t.Errorf("selected subprotocol = %q, want realtime", got)
	}
	return c.c
}

// dialClient dials the WebSocket at gw's pathQuery (a path and query) with
// opts and a 16 MiB read limit, failing t when the dial fails.
func dialClient(ctx context.Context, t testing.TB, gw *httptest.Server, pathQuery string, opts *websocket.DialOptions) (*client, *http.Response) {
	t.Helper()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+pathQuery, opts)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	ws.SetReadLimit(16 << 20)
	return &client{t: t, c: ws}, resp
}

// openClient is dialClient without options, then reading frames up to
// session.created.
func openClient(ctx context.Context, t testing.TB, gw *httptest.Server, pathQuery string) *client {
	t.Helper()
	c, _ := dialClient(ctx, t, gw, pathQuery, nil)
	c.until(ctx, "session.created")
	return c
}

// textAndVoiceTurns runs a text turn saying text, then a voice turn of
// 1 s of audio in ten appends and a commit, each read up to its
// response.done.
func (c *client) textAndVoiceTurns(ctx context.Context, text string) {
	c.t.Helper()
	c.send(ctx, userText(text))
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.done")
	for range 10 {
		c.send(ctx, audioAppend(100))
	}
	c.send(ctx, `{"type":"input_audio_buffer.commit"}`)
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.done")
}

// waitServe waits for the value a gateway handler sends on served once
// Serve returned.
func waitServe(t testing.TB, served <-chan struct{}) {
	t.Helper()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// userText is a conversation.item.create of a user message saying text.
func userText(text string) string {
	b, _ := json.Marshal(map[string]any{"type": "conversation.item.create", "item": map[string]any{
		"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": text}}}})
	return string(b)
}

// connect dials the gateway (with protos, or the default subprotocols)
// under a 10 s deadline that ends with the test, and returns the deadline
// context and the client.
func (h *harness) connect(protos ...string) (context.Context, *client) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.t.Cleanup(cancel)
	return ctx, &client{t: h.t, c: h.dial(ctx, protos...)}
}

// open is connect, then reading frames up to session.created.
func (h *harness) open(protos ...string) (context.Context, *client) {
	h.t.Helper()
	ctx, c := h.connect(protos...)
	c.until(ctx, "session.created")
	return ctx, c
}

// waitServed waits for Serve to return.
func (h *harness) waitServed() {
	h.t.Helper()
	waitServe(h.t, h.done)
}

// client wraps a test client connection and remembers every frame.
type client struct {
	t      testing.TB
	c      *websocket.Conn
	frames []string
}

func (c *client) send(ctx context.Context, ev string) {
	c.t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(ev)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// until reads frames until one of type typ and returns it.
func (c *client) until(ctx context.Context, typ string) []byte {
	c.t.Helper()
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		c.frames = append(c.frames, string(b))
		if got, _ := realtime.EventType(b); got == typ {
			return b
		}
	}
}

// until2 reads until an event of type a or b and returns it.
func (c *client) until2(ctx context.Context, a, b string) []byte {
	c.t.Helper()
	for {
		_, f, err := c.c.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s or %s: %v", a, b, err)
		}
		c.frames = append(c.frames, string(f))
		if got, _ := realtime.EventType(f); got == a || got == b {
			return f
		}
	}
}

// closed reads until the connection closes and returns the close error and
// the error events seen.
func (c *client) closed(ctx context.Context) (websocket.CloseError, []realtime.ErrorEventData) {
	c.t.Helper()
	var errs []realtime.ErrorEventData
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("connection ended without a close frame: %v", err)
			}
			return ce, errs
		}
		c.frames = append(c.frames, string(b))
		if typ, _ := realtime.EventType(b); typ == "error" {
			e, _ := realtime.DecodeErrorEvent(b)
			errs = append(errs, e)
		}
	}
}

func audioAppend(ms int) string {
	pcm := make([]byte, ms*48)
	return fmt.Sprintf(`{"type":"input_audio_buffer.append","audio":%q}`, base64.StdEncoding.EncodeToString(pcm))
}

// assertLedgerMatches checks the gateway ledger against the upstream's:
// same responses, status and usage, and costs from the meter.
func (h *harness) assertLedgerMatches(want int) []store.LedgerEntry {
	h.t.Helper()
	got, err := h.st.LedgerEntries(context.Background(), store.LedgerFilter{SessionID: h.sess.ID})
	if err != nil {
		h.t.Fatal(err)
	}
	upl := h.up.Ledger()
	if len(got) != want || len(upl) != want {
		h.t.Fatalf("gateway ledger has %d entries, upstream %d; want %d", len(got), len(upl), want)
	}
	byID := map[string]store.LedgerEntry{}
	for _, e := range got {
		byID[e.ResponseID] = e
	}
	tab := meter.DefaultTable()
	for _, u := range upl {
		e, ok := byID[u.ResponseID]
		if !ok {
			h.t.Errorf("upstream response %s missing from the ledger", u.ResponseID)
			continue
		}
		if e.Usage != u.Usage.Flat() || e.Status != u.Status || e.Model != u.Model {
			h.t.Errorf("ledger %s = %+v; upstream %+v", u.ResponseID, e, u)
		}
		if cost, _ := tab.Cost(u.Model, u.Usage.Flat()); e.CostNanoUSD != cost || cost == 0 {
			h.t.Errorf("cost of %s = %d, want %d (non-zero)", u.ResponseID, e.CostNanoUSD, cost)
		}
		if e.User != "alice" || e.AppKeyID != "key_1" || e.Tier != "default" || e.SessionID != h.sess.ID {
			h.t.Errorf("ledger attribution = %+v", e)
		}
	}
	return got
}

func (h *harness) assertNoSecrets(frames []string) {
	h.t.Helper()
	for _, f := range frames {
		if strings.Contains(f, serverKey) || strings.Contains(f, clientToken) {
			h.t.Fatalf("client frame leaks a secret: %s", f)
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, serverKey) || strings.Contains(logs, clientToken) {
		h.t.Fatalf("logs leak a secret: %s", logs)
	}
	audit, _ := h.st.AuditEntries(context.Background(), store.AuditFilter{})
	b, _ := json.Marshal(audit)
	if strings.Contains(string(b), serverKey) || strings.Contains(string(b), clientToken) {
		h.t.Fatalf("audit leaks a secret: %s", b)
	}
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// openTier governs nothing: no budgets, limits or locked fields, every
// event allowed. A relay under it relays every client event as is.
func openTier() policy.Tier {
	t := policy.DefaultTier()
	t.Budget, t.Rates, t.Concurrency = policy.Budget{}, policy.Rates{}, policy.Concurrency{}
	t.LockedFields = []string{}
	t.AllowedModels, t.AllowedVoices = nil, nil
	return t
}

// openGovernor is a governor on st whose default tier governs nothing.
func openGovernor(st store.Store) *govern.Governor {
	return &govern.Governor{Store: st, Tiers: map[string]policy.Tier{"default": openTier()}}
}

// gathered is the value of the counter name{labels…} in reg (labels in
// the order of the metric's label names).
func gathered(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
