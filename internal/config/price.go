package config

import "github.com/voicegate/voicegate/internal/meter"

// Price is a model's price in USD per 1M tokens; cached prices apply to the
// cached subset of the input tokens. AudioPerMinute prices duration-billed
// transcription (whisper-1) in USD per minute of input audio.
type Price struct {
	TextIn         float64 `yaml:"text_in"`
	TextCached     float64 `yaml:"text_cached"`
	TextOut        float64 `yaml:"text_out"`
	AudioIn        float64 `yaml:"audio_in"`
	AudioCached    float64 `yaml:"audio_cached"`
	AudioOut       float64 `yaml:"audio_out"`
	ImageIn        float64 `yaml:"image_in"`
	ImageCached    float64 `yaml:"image_cached"`
	AudioPerMinute float64 `yaml:"audio_per_minute"`
}

// meter converts p to the meter's nano-dollar units.
func (p Price) meter() meter.Price {
	return meter.Price{
		TextIn: meter.USD(p.TextIn), TextCached: meter.USD(p.TextCached), TextOut: meter.USD(p.TextOut),
		AudioIn: meter.USD(p.AudioIn), AudioCached: meter.USD(p.AudioCached), AudioOut: meter.USD(p.AudioOut),
		ImageIn: meter.USD(p.ImageIn), ImageCached: meter.USD(p.ImageCached),
		AudioPerMinute: meter.USD(p.AudioPerMinute),
	}
}

// PriceTable is the built-in price table with c.Prices over it: an entry
// replaces the built-in entry of its model as a whole.
func (c *Config) PriceTable() meter.Table {
	t := meter.DefaultTable()
	for model, p := range c.Prices {
		t[model] = p.meter()
	}
	return t
}

// validatePrices refuses negative prices.
func (c *Config) validatePrices(bad func(format string, a ...any)) {
	for m, p := range c.Prices {
		if p.TextIn < 0 || p.TextCached < 0 || p.TextOut < 0 || p.AudioIn < 0 || p.AudioCached < 0 || p.AudioOut < 0 || p.ImageIn < 0 || p.ImageCached < 0 || p.AudioPerMinute < 0 {
			bad("prices.%s: prices must not be negative", m)
		}
	}
}

// checkPriced refuses a realtime model tier allows that prices cannot
// price (dated snapshots fall back to their family): its sessions would
// be metered, and budgeted, at $0. Transcription models are open-ended
// and a tier does not list them, so they are not checked.
func checkPriced(bad func(format string, a ...any), tier string, models []string, prices meter.Table) {
	for _, m := range models {
		if _, ok := prices.Lookup(m); !ok {
			bad("tiers.%s.models: model %q has no price; add it under prices: (USD per 1M tokens)", tier, m)
		}
	}
}
