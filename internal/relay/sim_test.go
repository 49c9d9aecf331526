package relay

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestAgainstSimulator runs a text turn and a voice turn through the relay
// to the real upstream simulator and checks the gateway ledger against the
// simulator's own ledger, response by response.
func TestAgainstSimulator(t *testing.T) {
	for _, beta := range []bool{false, true} {
		name := "ga"
		if beta {
			name = "beta"
		}
		t.Run(name, func(t *testing.T) { testAgainstSimulator(t, beta) })
	}
}

func testAgainstSimulator(t *testing.T, beta bool) {
	simSrv := sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast})
	upSrv := httptest.NewServer(simSrv.Handler())
	t.Cleanup(upSrv.Close)
	st := memory.New()
	logs := &syncBuffer{}
	r := &Relay{
		Upstream: upSrv.URL + "/v1", APIKey: serverKey, Governor: openGovernor(st),
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: NewMetrics(prometheus.NewRegistry()),
	}
	cfg := `{"type":"realtime","model":"gpt-realtime","instructions":"You are pinned by the gateway.",` +
		`"audio":{"input":{"turn_detection":null},"output":{"voice":"marin"}}}`
	sess := &store.Session{ID: "vgs_sim", TokenID: "tok_sim", User: "bob", Tier: "default", Model: "gpt-realtime",
		Config: json.RawMessage(cfg), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateMinted}
	if err := st.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Serve(w, req, Conn{Session: sess, Beta: beta, Query: req.URL.Query(), SafetyID: "sid-bob"})
		served <- struct{}{}
	}))
	t.Cleanup(gw.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp := dialClient(ctx, t, gw, "/v1/realtime?model=gpt-realtime",
		&websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + clientToken}})
	if resp.Header.Get("Sec-WebSocket-Protocol") != "realtime" {
		t.Errorf("subprotocol = %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	created := c.until(ctx, "session.created")
	if strings.Contains(string(created), "You are pinned by the gateway.") || !strings.Contains(string(created), "marin") {
		t.Errorf("session.created lacks the pinned config or shows its instructions: %s", created)
	}

	c.textAndVoiceTurns(ctx, "Hello there")
	deltaName := "response.output_audio.delta"
	if beta {
		deltaName = "response.audio.delta"
	}
	sawDelta := false
	for _, f := range c.frames {
		typ, _ := realtime.EventType([]byte(f))
		sawDelta = sawDelta || typ == deltaName
		if typ == "session.updated" {
			t.Errorf("gateway's session.updated forwarded: %.200s", f)
		}
		if strings.Contains(f, serverKey) {
			t.Fatal("server key reached the client")
		}
	}
	if !sawDelta {
		t.Errorf("no %s relayed", deltaName)
	}
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	waitServe(t, served)

	got, _ := st.LedgerEntries(ctx, store.LedgerFilter{SessionID: sess.ID})
	want := simSrv.Ledger()
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("gateway ledger %d entries, simulator %d; want 2", len(got), len(want))
	}
	tab := meter.DefaultTable()
	for i, w := range want {
		e := got[i]
		if e.ResponseID != w.ResponseID || e.Status != w.Status || e.Usage != w.Usage.Flat() || e.Model != w.Model {
			t.Errorf("entry %d: gateway %+v, simulator %+v", i, e, w)
		}
		if cost, _ := tab.Cost(w.Model, w.Usage.Flat()); cost != e.CostNanoUSD || cost == 0 {
			t.Errorf("entry %d: cost %d, want %d", i, e.CostNanoUSD, cost)
		}
	}
	if got[1].Usage.InputAudioTokens < 10 {
		t.Errorf("voice turn input audio tokens = %d, want >= 10", got[1].Usage.InputAudioTokens)
	}
	if strings.Contains(logs.String(), serverKey) {
		t.Error("server key logged")
	}
}

// simHarness is the relay in front of the simulator with given options.
type simHarness struct {
	sim    *sim.Server
	relay  *Relay
	st     *memory.Store
	sess   *store.Session
	gw     *httptest.Server
	served chan struct{}
}

func newSimHarness(t *testing.T, opts sim.Options) *simHarness {
	opts.APIKeys = []string{serverKey}
	h := &simHarness{sim: sim.New(opts), st: memory.New(), served: make(chan struct{}, 4)}
	upSrv := httptest.NewServer(h.sim.Handler())
	t.Cleanup(upSrv.Close)
	h.relay = &Relay{Upstream: upSrv.URL + "/v1", APIKey: serverKey, Governor: openGovernor(h.st), AbandonWait: 5 * time.Second}
	h.sess = &store.Session{ID: "vgs_sim2", TokenID: "tok", User: "carol", Tier: "default", Model: "gpt-realtime",
		Config:    json.RawMessage(`{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`),
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateMinted}
	if err := h.st.CreateSession(context.Background(), h.sess); err != nil {
		t.Fatal(err)
	}
	h.gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.relay.Serve(w, req, Conn{Session: h.sess, Query: req.URL.Query()})
		h.served <- struct{}{}
	}))
	t.Cleanup(h.gw.Close)
	return h
}

// open dials the gateway under a 20 s deadline that ends with the test,
// reads up to session.created and returns the deadline context and the
// client.
func (h *simHarness) open(t *testing.T) (context.Context, *client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx, openClient(ctx, t, h.gw, "/v1/realtime?model=gpt-realtime")
}

// openMidResponse is open, then asking for a long story and reading up
// to its first audio delta.
func (h *simHarness) openMidResponse(t *testing.T) (context.Context, *client) {
	t.Helper()
	ctx, c := h.open(t)
	c.send(ctx, userText("Tell me a long story please"))
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.output_audio.delta")
	return ctx, c
}

func (h *simHarness) wait(t *testing.T) {
	t.Helper()
	waitServe(t, h.served)
}

// ledgerEqual checks gateway and simulator ledgers hold the same responses.
func (h *simHarness) ledgerEqual(t *testing.T, n int) []store.LedgerEntry {
	t.Helper()
	got, _ := h.st.LedgerEntries(context.Background(), store.LedgerFilter{SessionID: h.sess.ID})
	want := h.sim.Ledger()
	if len(got) != n || len(want) != n {
		t.Fatalf("gateway ledger %d, simulator %d; want %d", len(got), len(want), n)
	}
	for i := range want {
		if got[i].ResponseID != want[i].ResponseID || got[i].Usage != want[i].Usage.Flat() || got[i].Status != want[i].Status {
			t.Errorf("entry %d: gateway %+v, simulator %+v", i, got[i], want[i])
		}
	}
	return got
}

func TestSimClientVanishesMidResponse(t *testing.T) {
	h := newSimHarness(t, sim.Options{Pace: sim.PaceRealtime})
	_, c := h.openMidResponse(t)
	_ = c.c.CloseNow()
	h.wait(t)
	got := h.ledgerEqual(t, 1)
	if got[0].Status != "cancelled" {
		t.Errorf("abandoned response status = %s, want cancelled", got[0].Status)
	}
}

func TestSimRevokeMidResponse(t *testing.T) {
	h := newSimHarness(t, sim.Options{Pace: sim.PaceRealtime})
	ctx, c := h.openMidResponse(t)
	start := time.Now()
	h.relay.CloseSessions(func(s *store.Session) bool { return s.ID == h.sess.ID }, websocket.StatusPolicyViolation, "session_revoked", "revoked")
	ce, errs := c.closed(ctx)
	if time.Since(start) > time.Second || ce.Code != websocket.StatusPolicyViolation || len(errs) != 1 || errs[0].Error.Code != "session_revoked" {
		t.Errorf("after %v: close %v, errors %+v", time.Since(start), ce, errs)
	}
	h.wait(t)
	h.ledgerEqual(t, 1)
}

func TestSimUpstreamDrop(t *testing.T) {
	h := newSimHarness(t, sim.Options{Pace: sim.PaceFast, Faults: sim.Faults{DropMidResponse: true}})
	ctx, c := h.open(t)
	c.send(ctx, userText("hi"))
	c.send(ctx, `{"type":"response.create"}`)
	ce, errs := c.closed(ctx)
	if ce.Code != websocket.StatusInternalError || len(errs) == 0 || errs[len(errs)-1].Error.Code != "upstream_unavailable" {
		t.Errorf("close %v, errors %+v; want 1011 upstream_unavailable", ce, errs)
	}
	h.wait(t)
}
