package govern

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// wire is a governed session driven by hand: what the governor sends
// upstream and to the client is recorded.
type wire struct {
	t        *testing.T
	st       *memory.Store
	s        *Session
	mu       sync.Mutex
	upstream []string
	client   []string
	ended    []string
	seq      int
}

func newWire(t *testing.T, cfg string, lim store.Limits, beta bool) *wire {
	t.Helper()
	tier := testTier()
	tier.LockedFields = []string{}
	w := &wire{t: t, st: memory.New()}
	g := &Governor{Store: w.st, Tiers: map[string]policy.Tier{tier.Name: tier}}
	rec := &store.Session{ID: "vgs_w", User: "wes", Tier: tier.Name, Model: "gpt-realtime", Config: json.RawMessage(cfg),
		Limits: lim, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateLive}
	w.s = g.Open(rec, Hooks{
		Beta: beta,
		Upstream: func(_ context.Context, f []byte) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.upstream = append(w.upstream, string(f))
			return nil
		},
		Client: func(f []byte) { w.mu.Lock(); w.client = append(w.client, string(f)); w.mu.Unlock() },
		End:    func(r *Refusal) { w.mu.Lock(); w.ended = append(w.ended, r.Code); w.mu.Unlock() },
	})
	return w
}

// sent returns and forgets what the governor sent upstream by itself.
func (w *wire) sent() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.upstream
	w.upstream = nil
	return out
}

func (w *wire) up(frame string) string {
	typ, _ := realtime.EventType([]byte(frame))
	return string(w.s.Upstream(context.Background(), typ, []byte(frame)))
}

func (w *wire) created(conv bool) string {
	w.seq++
	id := fmt.Sprintf("resp_%d", w.seq)
	c := `"conv_1"`
	if !conv {
		c = "null"
	}
	w.up(`{"type":"response.created","response":{"id":"` + id + `","status":"in_progress","conversation_id":` + c + `}}`)
	return id
}

func (w *wire) done(id string, conv bool, in, out int) {
	c := `"conv_1"`
	if !conv {
		c = "null"
	}
	w.up(fmt.Sprintf(`{"type":"response.done","response":{"id":%q,"status":"completed","conversation_id":%s,"usage":{"total_tokens":%d,"input_tokens":%d,"output_tokens":%d,"input_token_details":{"audio_tokens":%d},"output_token_details":{"audio_tokens":%d}}}}`,
		id, c, in+out, in, out, in, out))
}

func (w *wire) reserved() int64 {
	_, r, err := w.st.Spent(context.Background(), "session:vgs_w")
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func field(t *testing.T, frame, path string) string {
	t.Helper()
	m := decodeObject(json.RawMessage(frame))
	v, ok := getPath(m, strings.Split(path, ".")...)
	if !ok {
		return "<absent>"
	}
	return string(v)
}

const createdGA = `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"turn_detection":{"type":"server_vad","threshold":0.5,"create_response":true,"interrupt_response":true}}}}`

// TestPinMediatesDefaultVAD: a mint that leaves turn detection at the
// upstream default pins that default with create_response false; the
// client's session.created still says true.
func TestPinMediatesDefaultVAD(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime","instructions":"Hi."}`, store.Limits{}, false)
	upd, id, err := w.s.Pin(json.RawMessage(createdGA))
	if err != nil || upd == nil || id == "" {
		t.Fatalf("Pin = %s, %q, %v", upd, id, err)
	}
	if got := field(t, string(upd), "session.audio.input.turn_detection.create_response"); got != "false" {
		t.Errorf("pinned create_response %s in %s", got, upd)
	}
	if got := field(t, string(upd), "session.audio.input.turn_detection.interrupt_response"); got != "true" {
		t.Errorf("interrupt_response not kept: %s", upd)
	}
	upstreamView := strings.Replace(createdGA, `"create_response":true`, `"create_response":false`, 1)
	out := w.up(`{"type":"session.created","session":` + upstreamView + `}`)
	if got := field(t, out, "session.audio.input.turn_detection.create_response"); got != "true" {
		t.Errorf("client sees create_response %s: %s", got, out)
	}
}

// TestPinTurnDetectionNull: turn_detection null from the mint is not
// mediated (no response ever starts by itself) and stays null.
func TestPinTurnDetectionNull(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	upd, _, err := w.s.Pin(json.RawMessage(createdGA))
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, string(upd), "session.audio.input.turn_detection"); got != "null" {
		t.Errorf("turn_detection %s", got)
	}
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_1"}`)
	if s := w.sent(); len(s) != 0 {
		t.Errorf("a commit with VAD off started %v", s)
	}
	if r := w.reserved(); r != 0 {
		t.Errorf("reserved %d with nothing running", r)
	}
}

// TestClientUpdateMediated: a client session.update turning semantic VAD
// on reaches upstream with create_response false, in GA and beta shapes,
// and a later null turns mediation off.
func TestClientUpdateMediated(t *testing.T) {
	for _, beta := range []bool{false, true} {
		w := newWire(t, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`, store.Limits{}, beta)
		path, upd := "session.audio.input.turn_detection", `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"semantic_vad"}}}}}`
		if beta {
			path, upd = "session.turn_detection", `{"type":"session.update","session":{"turn_detection":{"type":"semantic_vad"}}}`
		}
		fwd, reply := w.s.Client(context.Background(), []byte(upd))
		if reply != nil {
			t.Fatalf("beta=%v refused: %s", beta, reply)
		}
		if got := field(t, string(fwd), path+".create_response"); got != "false" {
			t.Errorf("beta=%v forwarded create_response %s: %s", beta, got, fwd)
		}
		w.up(`{"type":"input_audio_buffer.committed","item_id":"item_1"}`)
		if s := w.sent(); len(s) != 1 || !strings.Contains(s[0], `"response.create"`) {
			t.Errorf("beta=%v: a VAD commit sent %v, want one response.create", beta, s)
		}
		off := strings.Replace(upd, `{"type":"semantic_vad"}`, "null", 1)
		if fwd, _ := w.s.Client(context.Background(), []byte(off)); !strings.Contains(string(fwd), "null") {
			t.Errorf("null update forwarded as %s", fwd)
		}
		w.created(true)
		w.done("resp_1", true, 10, 10)
		w.up(`{"type":"input_audio_buffer.committed","item_id":"item_2"}`)
		if s := w.sent(); len(s) != 0 {
			t.Errorf("beta=%v: commit after turn_detection null sent %v", beta, s)
		}
	}
}

// TestMediatedTurn: a committed VAD turn gets a response.create from the
// governor, reserved and clamped to the budget; a client commit does not;
// a turn committed while the conversation's response runs waits for its
// response.done.
func TestMediatedTurn(t *testing.T) {
	budget := meter.DefaultTable().MaxCost("gpt-realtime", 300, 200)
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime"}`, store.Limits{BudgetNanoUSD: budget}, false)
	if _, _, err := w.s.Pin(json.RawMessage(createdGA)); err != nil {
		t.Fatal(err)
	}
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_1"}`)
	s := w.sent()
	if len(s) != 1 {
		t.Fatalf("sent %v", s)
	}
	mo := field(t, s[0], "response.max_output_tokens")
	if n := 0; mo == "<absent>" || json.Unmarshal([]byte(mo), &n) != nil || n <= 0 || n >= 4096 {
		t.Errorf("max_output_tokens %s: want clamped to the budget", mo)
	}
	if w.reserved() == 0 {
		t.Error("nothing reserved for the mediated turn")
	}
	id := w.created(true)
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_2"}`) // barge-in without interrupt: waits
	if s := w.sent(); len(s) != 0 {
		t.Fatalf("second turn sent while the first runs: %v", s)
	}
	w.done(id, true, 5, 5)
	if s := w.sent(); len(s) != 1 || !strings.Contains(s[0], "response.create") {
		t.Fatalf("waiting turn not started after response.done: %v", s)
	}
	// A client commit is the client's turn: it sends its own response.create.
	w.created(true)
	w.done("resp_2", true, 5, 5)
	w.s.Client(context.Background(), []byte(`{"type":"input_audio_buffer.commit"}`))
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_3"}`)
	if s := w.sent(); len(s) != 0 {
		t.Errorf("a client commit was answered by the gateway: %v", s)
	}
}

// TestRejectedCreateReleased: a response.create upstream rejects gives its
// reservation back, and the client gets its own event_id in the error.
func TestRejectedCreateReleased(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	fwd, reply := w.s.Client(context.Background(), []byte(`{"type":"response.create","event_id":"evt_mine","response":{"max_output_tokens":100}}`))
	if reply != nil {
		t.Fatal(string(reply))
	}
	ours := field(t, string(fwd), "event_id")
	if ours == `"evt_mine"` || w.reserved() == 0 {
		t.Fatalf("forwarded %s, reserved %d", fwd, w.reserved())
	}
	out := w.up(`{"type":"error","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"busy","event_id":` + ours + `}}`)
	if got := field(t, out, "error.event_id"); got != `"evt_mine"` {
		t.Errorf("client error event_id %s: %s", got, out)
	}
	if r := w.reserved(); r != 0 {
		t.Errorf("reserved %d after the rejection", r)
	}
	if n, _ := w.s.Outstanding(); n != 0 {
		t.Errorf("%d outstanding after the rejection", n)
	}
	// The next response settles against its own reservation.
	w.s.Client(context.Background(), []byte(`{"type":"response.create"}`))
	id := w.created(true)
	w.done(id, true, 10, 10)
	spent, reserved, _ := w.st.Spent(context.Background(), "session:vgs_w")
	want, _ := meter.DefaultTable().Cost("gpt-realtime", store.Usage{InputTokens: 10, InputAudioTokens: 10, OutputTokens: 10, OutputAudioTokens: 10, TotalTokens: 20})
	if spent != want || reserved != 0 {
		t.Errorf("spent %d reserved %d, want %d and 0", spent, reserved, want)
	}
}

// TestOutOfBandKeepsEstimate: an out-of-band response with input [] says
// nothing about the conversation: the estimate of the next response is not
// lowered to its small input.
func TestOutOfBandKeepsEstimate(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	w.s.Client(context.Background(), []byte(`{"type":"response.create"}`))
	id := w.created(true)
	w.done(id, true, 3000, 500) // the conversation now holds ≥ 3500 tokens
	w.s.mu.Lock()
	before := w.s.inputLocked()
	w.s.mu.Unlock()
	w.s.Client(context.Background(), []byte(`{"type":"response.create","response":{"conversation":"none","input":[]}}`))
	id = w.created(false)
	w.done(id, false, 5, 5)
	w.s.mu.Lock()
	after := w.s.inputLocked()
	w.s.mu.Unlock()
	if after < before || before < 3500 {
		t.Errorf("estimate %d before the out-of-band response, %d after; want it kept (≥ 3500)", before, after)
	}
}

// TestAudioEstimateByFormat: a second of input audio counts ten tokens in
// its own format: PCM16 24 kHz and G.711 8 kHz alike.
func TestAudioEstimateByFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		bytes  int
	}{{"audio/pcm", 48000}, {"audio/pcmu", 8000}, {"audio/pcma", 8000}} {
		w := newWire(t, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"format":{"type":"`+tc.format+`"},"turn_detection":null}}}`, store.Limits{}, false)
		chunk := base64.StdEncoding.EncodeToString(make([]byte, tc.bytes/50)) // 20 ms
		for range 50 {
			w.s.Client(context.Background(), []byte(`{"type":"input_audio_buffer.append","audio":"`+chunk+`"}`))
		}
		w.s.mu.Lock()
		got := w.s.in.bufTokens()
		w.s.mu.Unlock()
		if got < 10 || got > 10+itemTokens {
			t.Errorf("%s: 1 s of audio estimated at %d tokens, want 10..%d", tc.format, got, 10+itemTokens)
		}
	}
}

// TestAbandonCancels: once the client is gone, running responses are
// cancelled, one created afterwards is cancelled at once, and nothing new
// starts.
func TestAbandonCancels(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime"}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	if _, _, err := w.s.Pin(json.RawMessage(createdGA)); err != nil {
		t.Fatal(err)
	}
	w.s.Client(context.Background(), []byte(`{"type":"response.create"}`))
	w.s.Client(context.Background(), []byte(`{"type":"response.create","response":{"conversation":"none"}}`))
	running := w.created(true)
	if !w.s.Abandon(context.Background()) {
		t.Fatal("Abandon saw nothing outstanding")
	}
	if s := w.sent(); len(s) != 1 || !strings.Contains(s[0], running) {
		t.Fatalf("cancels %v, want one for %s", s, running)
	}
	late := w.created(false)
	if s := w.sent(); len(s) != 1 || !strings.Contains(s[0], late) {
		t.Fatalf("late response not cancelled: %v", s)
	}
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_9"}`)
	if fwd, _ := w.s.Client(context.Background(), []byte(`{"type":"response.create"}`)); fwd != nil {
		t.Errorf("a response.create was forwarded after the client left: %s", fwd)
	}
	if s := w.sent(); len(s) != 0 {
		t.Errorf("a turn started after the client left: %v", s)
	}
	w.done(running, true, 1, 1)
	_, idle := w.s.Outstanding()
	w.done(late, false, 1, 1)
	select {
	case <-idle:
	default:
		t.Fatal("not idle after both responses were done")
	}
	if r := w.reserved(); r != 0 {
		t.Errorf("reserved %d after both responses settled", r)
	}
}

// TestQuiesceStartsNothingNew: while a session drains, a running response
// finishes and is metered, but no client event goes upstream and no turn
// the server commits gets a response.
func TestQuiesceStartsNothingNew(t *testing.T) {
	w := newWire(t, `{"type":"realtime","model":"gpt-realtime"}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	if _, _, err := w.s.Pin(json.RawMessage(createdGA)); err != nil {
		t.Fatal(err)
	}
	w.s.Client(context.Background(), []byte(`{"type":"response.create"}`))
	id := w.created(true)
	w.s.Quiesce()
	if fwd, _ := w.s.Client(context.Background(), []byte(`{"type":"response.create"}`)); fwd != nil {
		t.Errorf("forwarded %s while draining", fwd)
	}
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_1"}`)
	if s := w.sent(); len(s) != 0 {
		t.Errorf("sent %v while draining: nothing may start, nothing running is cancelled", s)
	}
	w.done(id, true, 5, 5)
	if n, _ := w.s.Outstanding(); n != 0 || w.reserved() != 0 {
		t.Errorf("outstanding %d, reserved %d after the running response finished", n, w.reserved())
	}
}
