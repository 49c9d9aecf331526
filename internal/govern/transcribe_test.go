package govern

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
)

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

// TestTranscriptionHeldAsAudioAccumulates: with transcription on, the
// audio's worst-case transcription cost is reserved as it is appended (in
// chunks, not per frame), settled at the exact cost by the item's
// transcription, and an append the budget cannot cover is refused and
// ends a session that has nothing else running.
func TestTranscriptionHeldAsAudioAccumulates(t *testing.T) {
	ctx := context.Background()
	cfg := `{"type":"transcription","audio":{"input":{"turn_detection":null,"transcription":{"model":"whisper-1"}}}}`
	perSecond := int64(100_000) // whisper-1: 0.006 USD a minute
	w := newWire(t, cfg, store.Limits{BudgetNanoUSD: 10 * perSecond}, false)
	appendMs := func(ms int) []byte {
		var last []byte
		for range ms / 20 {
			_, last = w.s.Client(ctx, []byte(`{"type":"input_audio_buffer.append","event_id":"evt_a","audio":"`+strings.Repeat("A", 1280)+`"}`))
		}
		return last
	}
	appendMs(1000)
	held := w.reserved()
	if held < 2*perSecond || held > 8*perSecond {
		t.Fatalf("after 1 s of audio %d held; want the bound of a few seconds (one chunk)", held)
	}
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_1"}`)
	if n, _ := w.s.Outstanding(); n != 1 {
		t.Errorf("outstanding %d, want the item awaiting its transcription", n)
	}
	w.up(`{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_1","content_index":0,"transcript":"hi","usage":{"type":"duration","seconds":1}}`)
	spent, reserved, _ := w.st.Spent(ctx, "session:vgs_w")
	if spent != perSecond || reserved != 0 {
		t.Fatalf("spent %d reserved %d, want %d and 0", spent, reserved, perSecond)
	}
	// 9 s left: a long turn runs out; the refusal ends the idle session.
	if last := appendMs(12_000); !strings.Contains(string(last), CodeBudgetExceeded) || !strings.Contains(string(last), "evt_a") {
		t.Fatalf("last append answered %s, want budget_exceeded", last)
	}
	if len(w.ended) == 0 || w.ended[0] != CodeBudgetExceeded {
		t.Errorf("ended %v", w.ended)
	}
	if spent, reserved, _ := w.st.Spent(ctx, "session:vgs_w"); spent+reserved > 10*perSecond {
		t.Errorf("spent %d + reserved %d over the budget", spent, reserved)
	}
	w.s.Close(ctx)
	if _, reserved, _ := w.st.Spent(ctx, "session:vgs_w"); reserved != 0 {
		t.Errorf("reserved %d after Close", reserved)
	}
	// A cleared buffer and a failed transcription give their holds back.
	w2 := newWire(t, cfg, store.Limits{BudgetNanoUSD: 10 * perSecond}, false)
	w, w2 = w2, w
	appendMs(500)
	w.up(`{"type":"input_audio_buffer.cleared"}`)
	appendMs(500)
	w.up(`{"type":"input_audio_buffer.committed","item_id":"item_2"}`)
	w.up(`{"type":"conversation.item.input_audio_transcription.failed","item_id":"item_2","content_index":0,"error":{"message":"x"}}`)
	if spent, reserved, _ := w.st.Spent(ctx, "session:vgs_w"); spent != 0 || reserved != 0 {
		t.Errorf("spent %d reserved %d after a clear and a failure", spent, reserved)
	}
}

func testTier() policy.Tier {
	t := policy.DefaultTier()
	t.Name = "test"
	t.Budget = policy.Budget{}
	t.Rates = policy.Rates{}
	return t
}
