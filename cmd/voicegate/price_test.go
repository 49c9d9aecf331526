package main

import (
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
)

func TestPriceTableTranscriptionOverride(t *testing.T) {
	tab := priceTable(&config.Config{Prices: map[string]config.Price{"whisper-1": {AudioPerMinute: 0.012}}})
	if got, _ := tab.Cost("whisper-1", store.Usage{AudioSeconds: 30}); got != 6_000_000 {
		t.Errorf("30 s of whisper-1 at $0.012/min = %d nano-USD, want 6000000", got)
	}
	if got, _ := tab.Cost("gpt-4o-transcribe", store.Usage{InputAudioTokens: 1_000_000}); got != 6_000_000_000 {
		t.Errorf("built-in gpt-4o-transcribe audio price lost: %d", got)
	}
}
