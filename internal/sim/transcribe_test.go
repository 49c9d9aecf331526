package sim

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// TestTranscriptionUsagePerModel: a committed voice turn is transcribed
// with deterministic usage (tokens for gpt-4o transcribers, duration for
// whisper-1), and each transcription is in the ledger, keyed by its item,
// with exactly the usage of the completed event.
func TestTranscriptionUsagePerModel(t *testing.T) {
	const text = "Simulated transcript of 0.9 seconds of audio."
	tests := []struct {
		model string
		want  store.Usage
	}{
		// 900 ms committed (500 speech + 400 silence): ⌈900/100⌉ = 9 audio
		// tokens in, ⌈len(text)/4⌉ text tokens out.
		{"gpt-4o-transcribe", store.Usage{TotalTokens: 9 + 12, InputTokens: 9, InputAudioTokens: 9, OutputTokens: 12, OutputTextTokens: 12}},
		{"gpt-4o-mini-transcribe", store.Usage{TotalTokens: 9 + 12, InputTokens: 9, InputAudioTokens: 9, OutputTokens: 12, OutputTextTokens: 12}},
		{"whisper-1", store.Usage{AudioSeconds: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			srv, hs := startSim(t, Options{Pace: PaceFast})
			for _, query := range []string{"", "?intent=transcription"} {
				c := mustDial(t, hs, query)
				typ := "realtime"
				if query != "" {
					typ = "transcription"
				}
				c.update(map[string]any{"type": typ, "audio": map[string]any{"input": map[string]any{
					"turn_detection": nil, "transcription": map[string]any{"model": tc.model}}}})
				c.appendAudio(speech(500), 100)
				c.appendAudio(silence(400), 100)
				c.send(map[string]any{"type": "input_audio_buffer.commit"})
				ev, _ := c.until(realtime.TypeInputTranscriptionCompleted)
				if ev["transcript"] != text {
					t.Errorf("transcript = %q, want %q", ev["transcript"], text)
				}
				raw, _ := json.Marshal(ev["usage"])
				u, err := realtime.DecodeTranscriptionUsage(raw)
				if err != nil {
					t.Fatalf("usage %s: %v", raw, err)
				}
				if u.Flat() != tc.want {
					t.Errorf("%s usage %s = %+v, want %+v", typ, raw, u.Flat(), tc.want)
				}
				item, _ := ev["item_id"].(string)
				var found *LedgerEntry
				for _, e := range srv.Ledger() {
					if e.ResponseID == TranscriptionResponseID(item) {
						found = &e
					}
				}
				switch {
				case found == nil:
					t.Fatalf("%s: no ledger entry for %s in %+v", typ, item, srv.Ledger())
				case found.Kind != LedgerTranscription || found.ItemID != item || found.Model != tc.model ||
					found.Status != "completed" || found.Flat() != tc.want || found.Transcription == nil:
					t.Errorf("%s: ledger entry %+v", typ, *found)
				case u.Type == realtime.TranscriptionUsageTokens && found.Usage.Flat() != tc.want:
					t.Errorf("%s: ledger wire usage %+v, want %+v", typ, found.Usage.Flat(), tc.want)
				}
			}
			if n := len(srv.Ledger()); n != 2 {
				t.Errorf("ledger has %d entries, want 2 (no responses without turn detection)", n)
			}
		})
	}
}

// TestTranscriptionLedgerJSON: /_sim/ledger tells transcriptions apart.
func TestTranscriptionLedgerJSON(t *testing.T) {
	u := transcriptionUsage("whisper-1", 2500, "x")
	e := LedgerEntry{SessionID: "sess_1", ResponseID: TranscriptionResponseID("item_1"), Kind: LedgerTranscription,
		ItemID: "item_1", Model: "whisper-1", Status: "completed", Transcription: &u}
	b, _ := json.Marshal(e)
	var back LedgerEntry
	if err := json.Unmarshal(b, &back); err != nil || back.Kind != LedgerTranscription || back.Flat() != (store.Usage{AudioSeconds: 3}) {
		t.Errorf("round trip of %s = %+v, %v", b, back, err)
	}
	if got := fmt.Sprint(back.ResponseID); got != "transcription:item_1" {
		t.Errorf("response id %s", got)
	}
}
