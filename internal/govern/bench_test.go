package govern

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

// BenchmarkClientAppend is the governor's cost on the hottest client
// event: a 20 ms PCM16 append, budgets on, transcription off.
func BenchmarkClientAppend(b *testing.B) {
	w := newWire(&testing.T{}, `{"type":"realtime","model":"gpt-realtime","audio":{"input":{"transcription":null}}}`, store.Limits{BudgetNanoUSD: 1e9}, false)
	if _, _, err := w.s.Pin(json.RawMessage(createdGA)); err != nil {
		b.Fatal(err)
	}
	w.up(`{"type":"session.created","session":` + createdGA + `}`)
	frame := []byte(`{"type":"input_audio_buffer.append","event_id":"ev_1","audio":"` + strings.Repeat("AAAA", 320) + `"}`)
	ctx := context.Background()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if fwd, _ := w.s.Client(ctx, frame); fwd == nil {
			b.Fatal("refused")
		}
	}
}
