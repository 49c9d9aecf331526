package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

func TestTextAndVoiceTurn(t *testing.T) {
	up := &fakeUpstream{deltas: 3}
	h := newHarness(t, up, nil)
	ctx, c := h.connect()

	// The first frame is session.created carrying the pinned config.
	created := c.until(ctx, "session.created")
	if len(c.frames) != 1 {
		t.Fatalf("frames before session.created: %v", c.frames)
	}
	ev, _ := realtime.DecodeSessionEvent(created)
	var sess struct {
		Instructions string `json:"instructions"`
		Audio        struct {
			Output struct {
				Voice string `json:"voice"`
			} `json:"output"`
		} `json:"audio"`
	}
	_ = json.Unmarshal(ev.Session, &sess)
	// The pinned config applies; its instructions never reach the client.
	if sess.Instructions != "" || sess.Audio.Output.Voice != "marin" {
		t.Errorf("session.created carries %s, want the pinned config without its instructions", ev.Session)
	}
	if !h.relay.IsLive(h.sess.ID) || h.relay.LiveCount() != 1 {
		t.Error("session not reported live")
	}

	// A text turn, then a voice turn of 1 s of audio.
	c.textAndVoiceTurns(ctx, "hi")
	for _, f := range c.frames {
		if typ, _ := realtime.EventType([]byte(f)); typ == "session.updated" {
			t.Errorf("the gateway's own session.updated reached the client: %s", f)
		}
	}
	if err := c.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	h.waitServed()

	entries := h.assertLedgerMatches(2)
	var audioIn int64
	for _, e := range entries {
		audioIn += e.Usage.InputAudioTokens
	}
	if audioIn != 10 {
		t.Errorf("input audio tokens = %d, want 10 (1 s)", audioIn)
	}

	// Upstream saw the server key, the safety id, the query, and the pinned
	// update before any client event.
	up.mu.Lock()
	hdr, query, events := up.headers[0], up.queries[0], append([]string(nil), up.events...)
	up.mu.Unlock()
	if hdr.Get("Authorization") != "Bearer "+serverKey || hdr.Get("OpenAI-Safety-Identifier") != "sid-hash-alice" || hdr.Get("OpenAI-Beta") != "" {
		t.Errorf("upstream headers = %v", hdr)
	}
	if strings.Contains(hdr.Get("Sec-WebSocket-Protocol"), clientToken) {
		t.Error("client credential forwarded upstream")
	}
	if query != "model=gpt-realtime" {
		t.Errorf("upstream query = %q", query)
	}
	if len(events) == 0 || events[0] != "session.update" || events[1] != "conversation.item.create" {
		t.Errorf("upstream event order = %v", events)
	}
	if got := up.waitCloses(t); len(got) != 1 || got[0] != websocket.StatusNormalClosure {
		t.Errorf("upstream close codes = %v, want [1000]", got)
	}

	// Session state, audit, metrics, secrets.
	rec, _ := h.st.Session(ctx, h.sess.ID)
	if rec.State != store.StateIdle || rec.Transport != "websocket" || rec.LiveSeconds <= 0 || rec.StartedAt.IsZero() {
		t.Errorf("session after disconnect = %+v", rec)
	}
	audit, _ := h.st.AuditEntries(ctx, store.AuditFilter{SessionID: h.sess.ID})
	if len(audit) != 2 || audit[0].Kind != "connect" || audit[1].Kind != "disconnect" {
		t.Fatalf("audit = %+v", audit)
	}
	if d := audit[1].Detail; d["close_code"] != 1000 || d["responses"] != 2 || d["by"] != "client" || d["cost_nanousd"] != entries[0].CostNanoUSD+entries[1].CostNanoUSD {
		t.Errorf("disconnect detail = %v", d)
	}
	if v := gathered(t, h.reg, "vg_responses_total", "gpt-realtime", "completed"); v != 2 {
		t.Errorf("vg_responses_total = %v, want 2", v)
	}
	if v := metricValue(h.relay.Metrics.live); v != 0 {
		t.Errorf("vg_live_sessions = %v after disconnect", v)
	}
	if v := metricValue(h.relay.Metrics.frames.WithLabelValues(dirClient)); v < 14 {
		t.Errorf("client frames = %v, want >= 14", v)
	}
	if v := gathered(t, h.reg, "vg_cost_nanousd_total", "gpt-realtime", "default"); v != float64(entries[0].CostNanoUSD+entries[1].CostNanoUSD) {
		t.Errorf("cost metric = %v", v)
	}
	h.assertNoSecrets(c.frames)
	if h.relay.IsLive(h.sess.ID) {
		t.Error("still live after Serve returned")
	}
}

func TestCloseSessionsMidResponse(t *testing.T) {
	up := &fakeUpstream{deltas: 1000, deltaInterval: 2 * time.Millisecond}
	h := newHarness(t, up, nil)
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.output_audio.delta")

	if _, err := h.st.UpdateSession(ctx, h.sess.ID, func(s *store.Session) error { s.State = store.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := h.relay.CloseSessions(func(s *store.Session) bool { return s.ID == h.sess.ID }, websocket.StatusPolicyViolation, "session_revoked", "the session was revoked")
	if n != 1 {
		t.Fatalf("CloseSessions = %d, want 1", n)
	}
	ce, errs := c.closed(ctx)
	if el := time.Since(start); el > time.Second {
		t.Errorf("closed after %v, want < 1s", el)
	}
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != "session_revoked" {
		t.Errorf("close = %v, want 1008 session_revoked", ce)
	}
	if len(errs) != 1 || errs[0].Error.Code != "session_revoked" || errs[0].Error.Type != "voicegate_error" {
		t.Errorf("error events = %+v", errs)
	}
	h.waitServed()
	entries := h.assertLedgerMatches(1)
	if entries[0].Status != "cancelled" {
		t.Errorf("revoked in-flight response status = %s, want cancelled", entries[0].Status)
	}
	rec, _ := h.st.Session(ctx, h.sess.ID)
	if rec.State != store.StateRevoked {
		t.Errorf("state = %s, want revoked", rec.State)
	}
}

func TestCloseSessionsWhilePinning(t *testing.T) {
	up := &fakeUpstream{holdUpdate: make(chan struct{})}
	h := newHarness(t, up, nil)
	t.Cleanup(func() { close(up.holdUpdate) })
	ctx, c := h.connect()
	deadline := time.Now().Add(5 * time.Second)
	for !h.relay.IsLive(h.sess.ID) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if n := h.relay.CloseSessions(func(*store.Session) bool { return true }, websocket.StatusPolicyViolation, "session_revoked", "revoked"); n != 1 {
		t.Fatalf("CloseSessions = %d", n)
	}
	ce, errs := c.closed(ctx)
	if el := time.Since(start); el > time.Second {
		t.Errorf("closed after %v", el)
	}
	if ce.Code != websocket.StatusPolicyViolation || len(errs) != 1 || errs[0].Error.Code != "session_revoked" {
		t.Errorf("close = %v, errors = %+v", ce, errs)
	}
	for _, f := range c.frames {
		if typ, _ := realtime.EventType([]byte(f)); typ == "session.created" {
			t.Error("session.created sent before the pinned config applied")
		}
	}
	h.waitServed()
}

func TestClientDisconnectMidResponse(t *testing.T) {
	up := &fakeUpstream{deltas: 1000, deltaInterval: 2 * time.Millisecond}
	h := newHarness(t, up, nil)
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.output_audio.delta")
	_ = c.c.CloseNow() // vanish without a close frame
	h.waitServed()
	entries := h.assertLedgerMatches(1)
	if entries[0].Status != "cancelled" || entries[0].Usage.OutputTokens == 0 {
		t.Errorf("abandoned response = %+v, want cancelled with usage", entries[0])
	}
	events := up.Events()
	if events[len(events)-1] != "response.cancel" {
		t.Errorf("upstream events = %v, want a final response.cancel", events)
	}
	if got := up.waitCloses(t); len(got) != 1 || got[0] != websocket.StatusNormalClosure {
		t.Errorf("upstream close = %v, want 1000 after settling", got)
	}
}

func TestAbandonWaitBounded(t *testing.T) {
	// An upstream that never answers response.cancel: the relay gives up
	// after AbandonWait instead of hanging on to the upstream socket.
	up := &fakeUpstream{deltas: 100000, deltaInterval: 2 * time.Millisecond, ignoreCancel: true}
	h := newHarness(t, up, nil)
	h.relay.AbandonWait = 200 * time.Millisecond
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.output_audio.delta")
	start := time.Now()
	_ = c.c.CloseNow()
	h.waitServed()
	if el := time.Since(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Errorf("Serve returned %v after the client vanished, want about AbandonWait (200ms)", el)
	}
	if v := metricValue(h.relay.Metrics.errors.WithLabelValues("abandon_timeout")); v != 1 {
		t.Errorf("errors{abandon_timeout} = %v, want 1", v)
	}
	if got := up.waitCloses(t); len(got) != 1 || got[0] != websocket.StatusNormalClosure {
		t.Errorf("upstream close = %v, want 1000", got)
	}
}

func TestUpstreamAbruptDrop(t *testing.T) {
	up := &fakeUpstream{deltas: 5, dropMid: true}
	h := newHarness(t, up, nil)
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	ce, errs := c.closed(ctx)
	if ce.Code != websocket.StatusInternalError || ce.Reason != "upstream_unavailable" {
		t.Errorf("close = %v, want 1011 upstream_unavailable", ce)
	}
	if len(errs) != 1 || errs[0].Error.Code != "upstream_unavailable" {
		t.Errorf("error events = %+v", errs)
	}
	h.waitServed()
	if v := metricValue(h.relay.Metrics.errors.WithLabelValues("upstream_unavailable")); v != 1 {
		t.Errorf("errors{upstream_unavailable} = %v", v)
	}
}

func TestCloseCodesRelayed(t *testing.T) {
	t.Run("upstream to client", func(t *testing.T) {
		up := &fakeUpstream{closeOn: "input_audio_buffer.clear"}
		h := newHarness(t, up, nil)
		ctx, c := h.open()
		c.send(ctx, `{"type":"input_audio_buffer.clear"}`)
		ce, errs := c.closed(ctx)
		if ce.Code != 4001 || ce.Reason != "custom close" || len(errs) != 0 {
			t.Errorf("close = %v, errors %v; want 4001 custom close", ce, errs)
		}
		h.waitServed()
	})
	t.Run("client to upstream", func(t *testing.T) {
		up := &fakeUpstream{}
		h := newHarness(t, up, nil)
		ctx, c := h.open()
		_ = c.c.Close(4002, "bye")
		h.waitServed()
		if got := up.waitCloses(t); len(got) != 1 || got[0] != 4002 {
			t.Errorf("upstream close = %v, want 4002", got)
		}
		audit, _ := h.st.AuditEntries(ctx, store.AuditFilter{Kind: "disconnect"})
		if len(audit) != 1 || audit[0].Detail["close_code"] != 4002 || audit[0].Detail["reason"] != "bye" {
			t.Errorf("disconnect audit = %+v", audit)
		}
	})
}

func TestUpstreamDialFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken func(h *harness)
		status int
	}{
		{"refused key", func(h *harness) { h.relay.APIKey = "sk-wrong" }, http.StatusBadGateway},
		{"unreachable", func(h *harness) { h.upSrv.Close() }, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, &fakeUpstream{}, nil)
			tc.broken(h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.gw.URL, "http")+"/v1/realtime", nil)
			if err == nil || resp == nil {
				t.Fatalf("dial succeeded or no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), `"code":"upstream_unavailable"`) {
				t.Errorf("status %d body %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), serverKey) || strings.Contains(h.logs.String(), serverKey) || strings.Contains(h.logs.String(), "sk-wrong") {
				t.Error("server key leaked")
			}
			h.waitServed()
			if n, _ := h.st.AuditEntries(ctx, store.AuditFilter{}); len(n) != 0 {
				t.Errorf("audit after failed dial = %v", n)
			}
		})
	}
}

func TestBetaMode(t *testing.T) {
	up := &fakeUpstream{deltas: 2}
	h := newHarness(t, up, nil)
	ctx, c := h.connect("realtime", "openai-insecure-api-key."+clientToken, "openai-beta.realtime-v1")
	created := c.until(ctx, "session.created")
	if strings.Contains(string(created), `"instructions"`) || !strings.Contains(string(created), `"voice":"marin"`) {
		t.Errorf("beta session.created = %s", created)
	}
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.audio.delta")
	c.until(ctx, "response.done")
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	h.waitServed()
	h.assertLedgerMatches(1)
	up.mu.Lock()
	hdr, upd := up.headers[0], up.updates[0]
	up.mu.Unlock()
	if hdr.Get("OpenAI-Beta") != "realtime=v1" {
		t.Errorf("OpenAI-Beta = %q", hdr.Get("OpenAI-Beta"))
	}
	var u struct {
		Session map[string]json.RawMessage `json:"session"`
	}
	_ = json.Unmarshal(upd, &u)
	if string(u.Session["voice"]) != `"marin"` || u.Session["audio"] != nil || u.Session["type"] != nil || u.Session["model"] != nil {
		t.Errorf("beta pinning update = %s", upd)
	}
}

func TestDuplicateResponseDoneMeteredOnce(t *testing.T) {
	up := &fakeUpstream{deltas: 1, dupDone: true}
	h := newHarness(t, up, nil)
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.done")
	c.until(ctx, "response.done")
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	h.waitServed()
	h.assertLedgerMatches(1)
	audit, _ := h.st.AuditEntries(ctx, store.AuditFilter{Kind: "disconnect"})
	if audit[0].Detail["responses"] != 1 {
		t.Errorf("responses = %v, want 1", audit[0].Detail["responses"])
	}
	if v := gathered(t, h.reg, "vg_responses_total", "gpt-realtime", "completed"); v != 1 {
		t.Errorf("vg_responses_total = %v, want 1", v)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, &fakeUpstream{}, nil)
	ctx, c := h.open()
	errc := make(chan error, 1)
	go func() { errc <- h.relay.Shutdown(ctx) }()
	ce, errs := c.closed(ctx)
	if ce.Code != websocket.StatusGoingAway || ce.Reason != "going_away" || len(errs) != 1 || errs[0].Error.Code != "going_away" {
		t.Errorf("close = %v, errors %+v; want 1001 going_away", ce, errs)
	}
	if err := <-errc; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	h.waitServed()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.gw.URL, "http")+"/v1/realtime", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v", err)
	}
	h.waitServed()
}

func TestMaxSessionSeconds(t *testing.T) {
	h := newHarness(t, &fakeUpstream{}, func(s *store.Session) {
		s.Limits.MaxSessionSeconds = 3
		s.LiveSeconds = 2.4 // earlier connections count: 0.6 s left, warning at once
	})
	ctx, c := h.connect()
	start := time.Now()
	c.until(ctx, "session.created")
	ce, errs := c.closed(ctx)
	if el := time.Since(start); el < 400*time.Millisecond || el > 2*time.Second {
		t.Errorf("closed after %v, want about 0.6 s", el)
	}
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != "session_expired" {
		t.Errorf("close = %v", ce)
	}
	if len(errs) != 2 || errs[0].Error.Code != "session_expiring" || errs[1].Error.Code != "session_expired" {
		t.Errorf("error events = %+v", errs)
	}
	h.waitServed()
	rec, _ := h.st.Session(ctx, h.sess.ID)
	if rec.State != store.StateEnded || rec.EndReason != "session_expired" || rec.LiveSeconds < 3 {
		t.Errorf("session = %+v", rec)
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, &fakeUpstream{}, func(s *store.Session) { s.Limits.IdleTimeoutSeconds = 1 })
	ctx, c := h.open()
	// Activity at 0.5 s pushes the deadline to about 1.5 s.
	time.Sleep(500 * time.Millisecond)
	c.send(ctx, `{"type":"input_audio_buffer.clear"}`)
	start := time.Now()
	ce, _ := c.closed(ctx)
	if el := time.Since(start); el < 800*time.Millisecond {
		t.Errorf("idle close %v after the last event, want about 1 s", el)
	}
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != "idle_timeout" {
		t.Errorf("close = %v", ce)
	}
	h.waitServed()
}

func TestSecretRedacted(t *testing.T) {
	k := Secret(serverKey)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %s %#v %+v", k, k, k, k), buf.String(), fmt.Sprintf("%v", &Relay{APIKey: k})} {
		if strings.Contains(s, serverKey) {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

// TestOversizedFrameClosesSession: a client frame over the read limit is
// not read into memory: the client gets 1009 (message too big), the
// session ends and upstream never sees the frame.
func TestOversizedFrameClosesSession(t *testing.T) {
	up := &fakeUpstream{}
	h := newHarness(t, up, nil)
	h.relay.ReadLimit = 64 << 10
	ctx, c := h.open()
	big := `{"type":"input_audio_buffer.append","audio":"` + strings.Repeat("A", 65<<10) + `"}`
	// The gateway stops reading at the limit and closes: the write itself
	// may fail (the socket is cut before the rest is sent).
	if err := c.c.Write(ctx, websocket.MessageText, []byte(big)); err == nil {
		if ce, _ := c.closed(ctx); ce.Code != websocket.StatusMessageTooBig {
			t.Errorf("close = %v, want 1009", ce)
		}
	}
	h.waitServed()
	for _, ev := range up.Events() {
		if ev == "input_audio_buffer.append" {
			t.Error("the oversized append reached upstream")
		}
	}
	if h.relay.LiveCount() != 0 {
		t.Errorf("LiveCount = %d after the oversized frame", h.relay.LiveCount())
	}
}
