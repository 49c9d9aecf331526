package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/voicegate/voicegate/internal/govern"
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
	g := &govern.Governor{Store: st, Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: govern.NewMetrics(reg),
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	r := &Relay{Upstream: up.URL + "/v1", APIKey: serverKey, Governor: g,
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
	if n := gathered(t, reg, "vg_metering_errors_total", "bad_transcription_usage"); n != 2 {
		t.Errorf("bad_transcription_usage = %v, want 2 (unknown type, no item id)", n)
	}
	if n := gathered(t, reg, "vg_cost_nanousd_total", "whisper-1", tier.Name); n != 200_000 {
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
