package relay

import (
	"context"
	"encoding/json"
	"github.com/voicegate/voicegate/internal/govern"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// trSimHarness is the relay in front of the simulator for one session
// whose config and query the test chooses.
type trSimHarness struct {
	sim    *sim.Server
	st     *memory.Store
	relay  *Relay
	sess   *store.Session
	gw     *httptest.Server
	served chan struct{}
	beta   bool // the client speaks the beta interface
}

func newTrSimHarness(t *testing.T, cfg string, gov *govern.Governor, lim store.Limits) *trSimHarness {
	t.Helper()
	h := &trSimHarness{sim: sim.New(sim.Options{APIKeys: []string{serverKey}, Pace: sim.PaceFast}), st: memory.New(), served: make(chan struct{}, 4)}
	upSrv := httptest.NewServer(h.sim.Handler())
	t.Cleanup(upSrv.Close)
	if gov == nil {
		gov = openGovernor(h.st)
		gov.Tiers["test"] = openTier()
	}
	gov.Store = h.st
	h.relay = &Relay{Upstream: upSrv.URL + "/v1", APIKey: serverKey, Governor: gov, Metrics: NewMetrics(prometheus.NewRegistry())}
	h.sess = &store.Session{ID: "vgs_tr", TokenID: "tok_tr", User: "tess", AppKeyID: "key_tr", Tier: "test", Model: "gpt-realtime",
		Config: json.RawMessage(cfg), Limits: lim, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateMinted}
	if err := h.st.CreateSession(context.Background(), h.sess); err != nil {
		t.Fatal(err)
	}
	h.gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.relay.Serve(w, req, Conn{Session: h.sess, Beta: h.beta, Query: req.URL.Query()})
		h.served <- struct{}{}
	}))
	t.Cleanup(h.gw.Close)
	return h
}

func (h *trSimHarness) dial(ctx context.Context, t *testing.T, query string) *client {
	t.Helper()
	return openClient(ctx, t, h.gw, "/v1/realtime?"+query)
}

// closeAndWait closes the client and waits for Serve (and so the session's
// metering) to finish.
func (h *trSimHarness) closeAndWait(t *testing.T, c *client) {
	t.Helper()
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	waitServe(t, h.served)
}

// ledgerEqualsSim checks that the gateway ledger holds exactly the
// simulator's entries, responses and transcriptions alike, with the usage
// upstream billed and the cost of the price table; it returns the gateway
// entries by response id.
func (h *trSimHarness) ledgerEqualsSim(t *testing.T) map[string]store.LedgerEntry {
	t.Helper()
	got, err := h.st.LedgerEntries(context.Background(), store.LedgerFilter{SessionID: h.sess.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := h.sim.Ledger()
	if len(got) != len(want) {
		t.Fatalf("gateway ledger %d entries, simulator %d:\n%+v\n%+v", len(got), len(want), got, want)
	}
	byID := map[string]store.LedgerEntry{}
	for _, e := range got {
		byID[e.ResponseID] = e
	}
	tab := meter.DefaultTable()
	for _, w := range want {
		e, ok := byID[w.ResponseID]
		if !ok {
			t.Errorf("simulator entry %s not in the gateway ledger", w.ResponseID)
			continue
		}
		if e.Kind != w.Kind || e.Model != w.Model || e.Status != w.Status || e.Usage != w.Flat() {
			t.Errorf("entry %s: gateway %+v, simulator %+v", w.ResponseID, e, w)
		}
		if cost, _ := tab.Cost(w.Model, w.Flat()); cost != e.CostNanoUSD || cost == 0 {
			t.Errorf("entry %s: cost %d, want %d (non-zero)", w.ResponseID, e.CostNanoUSD, cost)
		}
	}
	return byID
}

// voiceTurn appends ms of audio, commits it and waits for its
// transcription; with respond it also runs a response and waits for it.
func voiceTurn(ctx context.Context, c *client, ms int, respond bool) (itemID string) {
	for range ms / 100 {
		c.send(ctx, audioAppend(100))
	}
	c.send(ctx, `{"type":"input_audio_buffer.commit"}`)
	if respond {
		c.send(ctx, `{"type":"response.create"}`)
	}
	var sawDone, sawTr bool
	for !sawTr || (respond && !sawDone) {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			c.t.Fatalf("voice turn: %v; frames %v", err, tail(c.frames, 3))
		}
		c.frames = append(c.frames, string(b))
		switch typ, _ := realtime.EventType(b); typ {
		case realtime.TypeResponseDone:
			sawDone = true
		case realtime.TypeInputTranscriptionCompleted:
			ev, err := realtime.DecodeTranscriptionCompleted(b)
			if err != nil || ev.Usage == nil {
				c.t.Fatalf("transcription event %s: %v", b, err)
			}
			itemID, sawTr = ev.ItemID, true
		}
	}
	return itemID
}

// TestTranscriptionMeteredAgainstSimulator: a realtime session with input
// transcription does a voice turn (token-billed gpt-4o-transcribe), then a
// session.update switches the transcriber to whisper-1 (duration-billed)
// for a second turn. The gateway ledger equals the simulator's: two
// responses and two transcriptions, each with the right model and cost.
// The beta interface (input_audio_transcription) is metered the same.
func TestTranscriptionMeteredAgainstSimulator(t *testing.T) {
	for _, beta := range []bool{false, true} {
		t.Run(map[bool]string{false: "ga", true: "beta"}[beta], func(t *testing.T) { testTranscriptionMetered(t, beta) })
	}
}

func testTranscriptionMetered(t *testing.T, beta bool) {
	cfg := `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null,` +
		`"transcription":{"model":"gpt-4o-transcribe"}}}}`
	h := newTrSimHarness(t, cfg, nil, store.Limits{})
	h.beta = beta
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.dial(ctx, t, "model=gpt-realtime")
	item1 := voiceTurn(ctx, c, 1000, true)
	update := `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"transcription":{"model":"whisper-1"}}}}}`
	if beta {
		update = `{"type":"session.update","session":{"input_audio_transcription":{"model":"whisper-1"}}}`
	}
	c.send(ctx, update)
	c.until(ctx, "session.updated")
	item2 := voiceTurn(ctx, c, 2500, true)
	h.closeAndWait(t, c)

	byID := h.ledgerEqualsSim(t)
	if len(byID) != 4 {
		t.Fatalf("ledger has %d entries, want 2 responses + 2 transcriptions", len(byID))
	}
	tr1, tr2 := byID[store.TranscriptionResponseID(item1)], byID[store.TranscriptionResponseID(item2)]
	// 1 s of audio: 10 audio tokens at $6/M, 12 text tokens out at $10/M.
	if tr1.Kind != store.LedgerTranscription || tr1.Model != "gpt-4o-transcribe" || tr1.Usage.InputAudioTokens != 10 ||
		tr1.CostNanoUSD != 10*6000+tr1.Usage.OutputTextTokens*10000 {
		t.Errorf("first transcription entry %+v", tr1)
	}
	// 2.5 s of audio billed as 3 s of whisper-1 at $0.006/min.
	if tr2.Kind != store.LedgerTranscription || tr2.Model != "whisper-1" || tr2.Usage.AudioSeconds != 3 || tr2.CostNanoUSD != 300_000 {
		t.Errorf("second transcription entry %+v", tr2)
	}
	// The session totals include the transcriptions.
	s := findAudit(t, h.st, h.sess.ID, "disconnect")
	if got, want := int64(s["cost_nanousd"].(float64)), sumCost(byID); got != want {
		t.Errorf("disconnect cost %d, want %d", got, want)
	}
}

// TestTranscriptionSessionMetered: a transcription session
// (?intent=transcription, type "transcription") has no responses; each
// committed turn is one ledger entry equal to the simulator's.
func TestTranscriptionSessionMetered(t *testing.T) {
	cfg := `{"type":"transcription","audio":{"input":{"turn_detection":null,"transcription":{"model":"gpt-4o-mini-transcribe"}}}}`
	h := newTrSimHarness(t, cfg, nil, store.Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.dial(ctx, t, "intent=transcription")
	items := []string{voiceTurn(ctx, c, 800, false), voiceTurn(ctx, c, 3000, false)}
	h.closeAndWait(t, c)
	byID := h.ledgerEqualsSim(t)
	if len(byID) != 2 {
		t.Fatalf("ledger has %d entries, want 2 transcriptions", len(byID))
	}
	for i, ms := range []int64{800, 3000} {
		e := byID[store.TranscriptionResponseID(items[i])]
		if e.Model != "gpt-4o-mini-transcribe" || e.Usage.InputAudioTokens != ms/100 ||
			e.CostNanoUSD != ms/100*3000+e.Usage.OutputTextTokens*5000 {
			t.Errorf("turn %d: entry %+v", i, e)
		}
	}
}

// TestTranscriptionChargesBudget: transcriptions are reserved as the
// audio accumulates and settled at their exact cost; once the budget
// cannot hold the next second of audio, the append is refused and the
// session closed with budget_exceeded, never over its budget.
func TestTranscriptionChargesBudget(t *testing.T) {
	cfg := `{"type":"transcription","audio":{"input":{"turn_detection":null,"transcription":{"model":"whisper-1"}}}}`
	tier := testTier()
	g := &govern.Governor{Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: govern.NewMetrics(nil)}
	const budget = 550_000 // 5.5 s of whisper-1
	h := newTrSimHarness(t, cfg, g, store.Limits{BudgetNanoUSD: budget})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.dial(ctx, t, "intent=transcription")
	voiceTurn(ctx, c, 1000, false) // 100000
	voiceTurn(ctx, c, 1000, false) // 200000
	// Settled before the client sees the transcription: no wait.
	if spent, reserved, _ := h.st.Spent(ctx, "session:"+h.sess.ID); spent != 200_000 || reserved != 0 {
		t.Fatalf("after two turns spent %d reserved %d, want 200000 and 0", spent, reserved)
	}
	// Speak on: the appends the budget cannot hold are refused.
	for range 100 {
		if err := c.c.Write(ctx, websocket.MessageText, []byte(audioAppend(100))); err != nil {
			break
		}
	}
	ce, errs := c.closed(ctx)
	if ce.Code != websocket.StatusPolicyViolation || len(errs) == 0 || errs[len(errs)-1].Error.Code != govern.CodeBudgetExceeded {
		t.Errorf("close %v, errors %+v; want 1008 budget_exceeded", ce, errs)
	}
	select {
	case <-h.served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	byID := h.ledgerEqualsSim(t)
	spent, reserved, _ := h.st.Spent(ctx, "session:"+h.sess.ID)
	if spent != sumCost(byID) || spent > budget || reserved != 0 {
		t.Errorf("spent %d, ledger %d, reserved %d, budget %d", spent, sumCost(byID), reserved, budget)
	}
}

func sumCost(m map[string]store.LedgerEntry) int64 {
	var n int64
	for _, e := range m {
		n += e.CostNanoUSD
	}
	return n
}

// findAudit returns the detail of the session's last audit entry of kind.
func findAudit(t *testing.T, st store.Store, sessionID, kind string) map[string]any {
	t.Helper()
	list, err := st.AuditEntries(context.Background(), store.AuditFilter{SessionID: sessionID, Kind: kind})
	if err != nil || len(list) == 0 {
		t.Fatalf("no %s audit for %s: %v", kind, sessionID, err)
	}
	raw, _ := json.Marshal(list[len(list)-1].Detail)
	var d map[string]any
	_ = json.Unmarshal(raw, &d)
	return d
}
