package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// scriptedUpstream is a loopback Realtime upstream that sends
// session.created with the given session object, then, on the client's
// first input_audio_buffer.commit, the frames of script, then closes.
func scriptedUpstream(t *testing.T, session string, script []string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if c.Write(ctx, websocket.MessageText, []byte(`{"type":"session.created","event_id":"ev_0","session":`+session+`}`)) != nil {
			return
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if !strings.Contains(string(b), "input_audio_buffer.commit") {
				continue
			}
			for _, f := range script {
				if c.Write(ctx, websocket.MessageText, []byte(f)) != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func completed(item, usage string) string {
	if usage == "" {
		return fmt.Sprintf(`{"type":"conversation.item.input_audio_transcription.completed","item_id":%q,"content_index":0,"transcript":"hi"}`, item)
	}
	return fmt.Sprintf(`{"type":"conversation.item.input_audio_transcription.completed","item_id":%q,"content_index":0,"transcript":"hi","usage":%s}`, item, usage)
}

// TestTranscriptionExactlyOnce: a duplicated completed event is metered
// and charged once; an unknown usage type and a missing usage are logged
// (and counted), not metered, and do not end the session; the model comes
// from the beta session config (input_audio_transcription) and follows
// session.updated.
func TestTranscriptionExactlyOnce(t *testing.T) {
	script := []string{
		completed("item_a", `{"type":"duration","seconds":2}`),
		completed("item_a", `{"type":"duration","seconds":2}`),                                                     // duplicate
		completed("item_b", `{"type":"words","count":4}`),                                                          // unknown type
		completed("item_c", ""),                                                                                    // no usage
		`{"type":"conversation.item.input_audio_transcription.completed","usage":{"type":"duration","seconds":1}}`, // no item
		`{"type":"session.updated","session":{"input_audio_transcription":{"model":"gpt-4o-transcribe"}}}`,
		completed("item_d", `{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}`),
		`{"type":"session.updated","session":{"input_audio_transcription":null}}`,
		`{"type":"marker"}`,
	}
	up := scriptedUpstream(t, `{"model":"gpt-realtime","input_audio_transcription":{"model":"whisper-1"}}`, script)
	st := memory.New()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	tier := testTier()
	g := &Governance{Store: st, Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: NewGovMetrics(nil)}
	r := &Relay{Upstream: up.URL + "/v1", APIKey: serverKey, Store: st, Govern: g.Govern,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: NewMetrics(reg)}
	sess := &store.Session{ID: "vgs_once", TokenID: "tok_once", User: "uma", Tier: tier.Name, Model: "gpt-realtime",
		Limits: store.Limits{BudgetNanoUSD: 1_000_000_000}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateMinted}
	if err := st.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Serve(w, req, Conn{Session: sess, Beta: true, Query: req.URL.Query()})
		served <- struct{}{}
	}))
	t.Cleanup(gw.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := openClient(ctx, t, gw, "/v1/realtime?model=gpt-realtime")
	c.send(ctx, `{"type":"input_audio_buffer.commit"}`)
	c.until(ctx, "marker")
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	waitServe(t, served)

	got, _ := st.LedgerEntries(ctx, store.LedgerFilter{SessionID: sess.ID})
	if len(got) != 2 {
		t.Fatalf("ledger %+v; want item_a and item_d", got)
	}
	a, d := got[0], got[1]
	if a.ResponseID != "transcription:item_a" || a.Kind != store.LedgerTranscription || a.Model != "whisper-1" ||
		a.Usage != (store.Usage{AudioSeconds: 2}) || a.CostNanoUSD != 200_000 || a.User != "uma" || a.Tier != tier.Name {
		t.Errorf("item_a entry %+v", a)
	}
	if d.ResponseID != "transcription:item_d" || d.Model != "gpt-4o-transcribe" || d.Usage.InputAudioTokens != 13 ||
		d.Usage.OutputTextTokens != 9 || d.CostNanoUSD != 168_000 {
		t.Errorf("item_d entry %+v", d)
	}
	if spent, _, _ := st.Spent(ctx, "session:"+sess.ID); spent != 368_000 {
		t.Errorf("session budget spent %d, want 368000 (each transcription charged once)", spent)
	}
	if n := metricValue(r.Metrics.errors.WithLabelValues("bad_transcription_usage")); n != 2 {
		t.Errorf("bad_transcription_usage = %v, want 2 (unknown type, no item id)", n)
	}
	if n := metricValue(r.Metrics.cost.WithLabelValues("whisper-1", tier.Name)); n != 200_000 {
		t.Errorf("whisper-1 cost metric = %v", n)
	}
	if !strings.Contains(logs.String(), `unknown type \"words\"`) {
		t.Errorf("unknown usage type not logged: %s", logs.String())
	}
	var dis map[string]any
	list, _ := st.AuditEntries(ctx, store.AuditFilter{SessionID: sess.ID, Kind: "disconnect"})
	if len(list) == 1 {
		raw, _ := json.Marshal(list[0].Detail)
		_ = json.Unmarshal(raw, &dis)
	}
	if dis["cost_nanousd"] != float64(368_000) || dis["responses"] != float64(0) {
		t.Errorf("disconnect audit %v", dis)
	}
}

func TestTranscriptionModelOfConfig(t *testing.T) {
	tests := []struct {
		session string
		model   string
		set     bool
	}{
		{`{"type":"realtime","audio":{"input":{"transcription":{"model":"gpt-4o-transcribe"}}}}`, "gpt-4o-transcribe", true},
		{`{"type":"transcription","audio":{"input":{"transcription":{"model":"whisper-1","language":"en"}}}}`, "whisper-1", true},
		{`{"audio":{"input":{"transcription":null}}}`, "", true},
		{`{"input_audio_transcription":{"model":"gpt-4o-mini-transcribe"}}`, "gpt-4o-mini-transcribe", true},
		{`{"input_audio_transcription":null}`, "", true},
		{`{"audio":{"input":{"format":{"type":"audio/pcm"}}}}`, "", false},
		{`{"model":"gpt-realtime"}`, "", false},
		{`{"audio":{"input":{"transcription":"bad"}}}`, "", false},
		{`[]`, "", false},
		{``, "", false},
	}
	for _, tc := range tests {
		m, set := transcriptionModel(json.RawMessage(tc.session))
		if m != tc.model || set != tc.set {
			t.Errorf("%s: %q, %v; want %q, %v", tc.session, m, set, tc.model, tc.set)
		}
	}
}

// TestTranscriptionChargeCountsHeldGrants: after a transcription is
// charged, the session is closed once the account's spend plus the
// session's own outstanding response grants reaches the limit, so the
// responses (settling within their grants) cannot take the account over
// by more than the transcription.
func TestTranscriptionChargeCountsHeldGrants(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	tier := testTier()
	g := &Governance{Store: st, Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: NewGovMetrics(nil)}
	rec := &store.Session{ID: "vgs_held", User: "hal", Tier: tier.Name, Model: "gpt-realtime",
		Limits: store.Limits{BudgetNanoUSD: 1_000_000}, ExpiresAt: time.Now().Add(time.Hour)}
	v := g.Govern(rec).(*governor)
	var closed []string
	v.Bind(Binding{Close: func(reason, _ string) { closed = append(closed, reason) }})
	tr := func(id string, cost int64) {
		v.TranscriptionDone(ctx, store.LedgerEntry{SessionID: rec.ID, ResponseID: store.TranscriptionResponseID(id),
			Kind: store.LedgerTranscription, CostNanoUSD: cost})
	}
	tr("item_1", 300_000)
	if len(closed) != 0 {
		t.Fatalf("closed at 300000 of 1000000: %v", closed)
	}
	v.mu.Lock()
	v.byResp["resp_1"] = reservation{id: "res_1", granted: 500_000}
	v.mu.Unlock()
	tr("item_2", 100_000) // 400000 spent + 500000 held < limit
	if len(closed) != 0 {
		t.Fatalf("closed at 400000 spent + 500000 held: %v", closed)
	}
	tr("item_3", 100_000) // 500000 + 500000 = limit
	if len(closed) != 1 || closed[0] != CodeBudgetExceeded {
		t.Fatalf("closes %v; want budget_exceeded once spend + held grants reach the limit", closed)
	}
	if spent, _, _ := st.Spent(ctx, "session:"+rec.ID); spent != 500_000 {
		t.Errorf("spent %d, want 500000", spent)
	}
	// No budget, nothing to charge: no account is touched.
	free := &store.Session{ID: "vgs_free", Tier: tier.Name, ExpiresAt: time.Now().Add(time.Hour)}
	fv := g.Govern(free).(*governor)
	fv.Bind(Binding{Close: func(reason, _ string) { t.Errorf("unbudgeted session closed: %s", reason) }})
	fv.TranscriptionDone(ctx, store.LedgerEntry{SessionID: free.ID, CostNanoUSD: 5})
}
