package config

import (
	"fmt"
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

// TestUnpricedModelRefused: a model a tier allows must have a price, built
// in or under prices:, or the configuration does not load.
func TestUnpricedModelRefused(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string // substrings of the error; none = loads
	}{
		{"built-in models", "tiers: {pro: {models: [gpt-realtime-2.1, gpt-realtime-2.1-mini]}}\n", nil},
		{"dated snapshot falls back", "tiers: {pro: {models: [gpt-realtime-2.1-2026-03-01, gpt-realtime-2025-08-28]}}\n", nil},
		{"unpriced", "tiers: {pro: {models: [gpt-realtime, my-model]}}\n",
			[]string{"tiers.pro.models", `"my-model"`, "prices:"}},
		{"unpriced snapshot", "tiers: {pro: {models: [my-model-2026-01-01]}}\n",
			[]string{"tiers.pro.models", `"my-model-2026-01-01"`}},
		{"priced by override", "tiers: {pro: {models: [my-model]}}\nprices: {my-model: {text_in: 1, audio_out: 2}}\n", nil},
		{"override prices snapshots", "tiers: {pro: {models: [my-model-2026-01-01]}}\nprices: {my-model: {text_in: 1}}\n", nil},
		{"default tier inherited", "tiers: {default: {models: [my-model]}, pro: {}}\n",
			[]string{"tiers.default.models", "tiers.pro.models", `"my-model"`}},
		{"transcription not checked", "tiers: {pro: {transcription: true}}\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vg.yaml")
			if err := os.WriteFile(path, []byte(tc.yml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := load(t, nil, map[string]string{"VOICEGATE_CONFIG": path, "OPENAI_API_KEY": "sk-test"})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded; want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestDefaultsPriced: the built-in configuration validates, and a tier
// whose models are left to policy (KnownModels) is priced by the built-in
// table.
func TestDefaultsPriced(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	pt, err := Tier{TTLDefaultSeconds: 600, TTLMaxSeconds: 7200}.Policy("known")
	if err != nil {
		t.Fatal(err)
	}
	if len(pt.AllowedModels) == 0 {
		t.Fatal("a tier without models allows any model; want policy.KnownModels")
	}
	var errs []string
	checkPriced(func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }, "known", pt.AllowedModels, c.PriceTable())
	if len(errs) > 0 {
		t.Errorf("unpriced: %s", strings.Join(errs, "; "))
	}
}

func TestPriceTableOverride(t *testing.T) {
	c := &Config{Prices: map[string]Price{"gpt-realtime": {TextIn: 1}}}
	tab := c.PriceTable()
	if got := tab["gpt-realtime"]; got.TextIn != 1_000_000_000 || got.AudioOut != 0 {
		t.Errorf("override = %+v; want it to replace the built-in entry whole", got)
	}
	if _, ok := tab.Lookup("gpt-realtime-2.1"); !ok {
		t.Error("built-in entries lost")
	}
}
