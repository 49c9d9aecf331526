package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTranscriptionPricePerMinute(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vg.yaml")
	if err := os.WriteFile(path, []byte("prices:\n  whisper-1: {audio_per_minute: 0.012}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, nil, map[string]string{"VOICEGATE_CONFIG": path, "OPENAI_API_KEY": "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Prices["whisper-1"].AudioPerMinute; got != 0.012 {
		t.Errorf("audio_per_minute = %v, want 0.012", got)
	}
	if err := os.WriteFile(path, []byte("prices:\n  whisper-1: {audio_per_minute: -1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, nil, map[string]string{"VOICEGATE_CONFIG": path, "OPENAI_API_KEY": "sk-test"}); err == nil || !strings.Contains(err.Error(), "prices.whisper-1") {
		t.Errorf("negative per-minute price: err %v", err)
	}
}
