package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestServeAndDevRefuseUnpricedModel: a tier allowing a model the price
// table cannot price stops both subcommands at start-up, before any
// session could be metered at $0.
func TestServeAndDevRefuseUnpricedModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vg.yaml")
	if err := os.WriteFile(path, []byte("tiers: {pro: {models: [gpt-realtime, my-model]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OPENAI_API_KEY": "sk-x", "VOICEGATE_CONFIG": path}
	for _, cmd := range []string{"serve", "dev"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{cmd, "--store", "memory", "--addr", "127.0.0.1:0", "--admin-key", adminKey},
			envFunc(env), strings.NewReader(""), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), `tiers.pro.models: model "my-model" has no price`) {
			t.Errorf("%s: err = %v", cmd, err)
		}
	}
}
