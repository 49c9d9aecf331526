package meter

import (
	"math"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

func TestTranscriptionPrices(t *testing.T) {
	tab := DefaultTable()
	tests := []struct {
		model                    string
		audioIn, textIn, textOut int64
		perMinute                int64
	}{
		{"gpt-4o-transcribe", 6_000_000_000, 2_500_000_000, 10_000_000_000, 0},
		{"gpt-4o-transcribe-diarize", 6_000_000_000, 2_500_000_000, 10_000_000_000, 0},
		{"gpt-4o-mini-transcribe", 3_000_000_000, 1_250_000_000, 5_000_000_000, 0},
		{"whisper-1", 0, 0, 0, 6_000_000},
		{"gpt-realtime-whisper", 0, 0, 0, 17_000_000},
		{"gpt-live-transcribe", 0, 0, 0, 17_000_000},
		{"gpt-transcribe", 0, 0, 0, 4_500_000},
	}
	for _, tc := range tests {
		p, ok := tab.Lookup(tc.model)
		if !ok {
			t.Errorf("no price for %s", tc.model)
			continue
		}
		if p.AudioIn != tc.audioIn || p.TextIn != tc.textIn || p.TextOut != tc.textOut || p.AudioPerMinute != tc.perMinute {
			t.Errorf("%s = %+v", tc.model, p)
		}
	}
	if _, ok := tab.Lookup("gpt-4o-mini-transcribe-2025-03-20"); !ok {
		t.Error("dated transcription snapshot not priced")
	}
}

func TestTranscriptionCost(t *testing.T) {
	tab := DefaultTable()
	tests := []struct {
		name  string
		model string
		u     store.Usage
		want  int64
	}{
		// The protocol notes' example: 13 audio tokens in, 9 text out.
		// 13×6000 + 9×10000 = 168000 nano-dollars.
		{"tokens", "gpt-4o-transcribe",
			store.Usage{TotalTokens: 22, InputTokens: 13, OutputTokens: 9, InputAudioTokens: 13, OutputTextTokens: 9}, 168_000},
		// A text prompt is billed at the text input rate: 4×1250 + 20×3000 + 7×5000.
		{"mini with prompt", "gpt-4o-mini-transcribe",
			store.Usage{InputTextTokens: 4, InputAudioTokens: 20, OutputTextTokens: 7}, 100_000},
		// 0.006 USD per minute = 100000 nano-dollars per second.
		{"duration", "whisper-1", store.Usage{AudioSeconds: 7}, 700_000},
		{"one minute", "whisper-1", store.Usage{AudioSeconds: 60}, 6_000_000},
		{"zero", "whisper-1", store.Usage{}, 0},
		// Tokens on a duration-billed model cost nothing: it has no token prices.
		{"tokens on whisper", "whisper-1", store.Usage{InputAudioTokens: 100}, 0},
	}
	for _, tc := range tests {
		got, ok := tab.Cost(tc.model, tc.u)
		if !ok || got != tc.want {
			t.Errorf("%s: Cost = %d, %v; want %d", tc.name, got, ok, tc.want)
		}
	}
}

func TestDurationCostRounding(t *testing.T) {
	// 1 nano-dollar per minute: a second is 1/60 nano, rounded half up on
	// the whole duration.
	tab := Table{"m": {AudioPerMinute: 1}}
	for _, tc := range []struct{ sec, want int64 }{{29, 0}, {30, 1}, {89, 1}, {90, 2}, {120, 2}} {
		if got, _ := tab.Cost("m", store.Usage{AudioSeconds: tc.sec}); got != tc.want {
			t.Errorf("%d s: cost %d, want %d", tc.sec, got, tc.want)
		}
	}
	// Duration adds to a token cost; a huge duration saturates.
	tab = Table{"m": {AudioPerMinute: 60, TextOut: 1_000_000}}
	if got, _ := tab.Cost("m", store.Usage{AudioSeconds: 5, OutputTextTokens: 3}); got != 8 {
		t.Errorf("mixed cost = %d, want 8", got)
	}
	tab = Table{"m": {AudioPerMinute: math.MaxInt64, TextOut: math.MaxInt64}}
	if got, _ := tab.Cost("m", store.Usage{AudioSeconds: math.MaxInt64, OutputTextTokens: math.MaxInt64}); got != math.MaxInt64 {
		t.Errorf("huge cost = %d, want saturation", got)
	}
}

func TestTranscriptionPricesDoNotRaiseUnknownReservation(t *testing.T) {
	// An unpriced model reserves at the dearest rates of the table; the
	// transcription models must not change that bound.
	with, without := DefaultTable(), DefaultTable()
	for _, m := range []string{"gpt-4o-transcribe", "gpt-4o-transcribe-diarize", "gpt-4o-mini-transcribe",
		"whisper-1", "gpt-realtime-whisper", "gpt-live-transcribe", "gpt-transcribe"} {
		delete(without, m)
	}
	if a, b := with.MaxCost("unknown", 100, 100), without.MaxCost("unknown", 100, 100); a != b {
		t.Errorf("MaxCost(unknown) = %d with transcription prices, %d without", a, b)
	}
}
