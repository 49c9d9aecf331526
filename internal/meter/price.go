// Package meter turns Realtime usage into money: the price table, the cost
// of a response in integer nano-dollars, and the bounded cost of a response
// that budgets reserve before it starts.
//
// Units: a Price holds nano-dollars per one million tokens, i.e. the listed
// "USD per 1M tokens" times 1e9. Every listed price has at most nine decimal
// places, so the table is exact in integers; a cost is Σ tokens × price /
// 1e6, computed in 128-bit arithmetic and rounded half up once, on the total.
// Duration-billed transcription models (whisper-1, gpt-realtime-whisper)
// are priced per minute of audio instead (AudioPerMinute, nano-dollars per
// minute) and billed per whole second: seconds × price / 60, rounded half
// up.
package meter

import (
	"math"
	"regexp"
	"strings"
)

// Price is the price of one model in nano-dollars per 1M tokens per
// modality. Cached tokens are a subset of input tokens and are charged at
// the cached rate instead of the input rate.
type Price struct {
	TextIn      int64 `json:"text_in" yaml:"text_in"`
	TextCached  int64 `json:"text_cached" yaml:"text_cached"`
	TextOut     int64 `json:"text_out" yaml:"text_out"`
	AudioIn     int64 `json:"audio_in" yaml:"audio_in"`
	AudioCached int64 `json:"audio_cached" yaml:"audio_cached"`
	AudioOut    int64 `json:"audio_out" yaml:"audio_out"`
	ImageIn     int64 `json:"image_in" yaml:"image_in"`
	ImageCached int64 `json:"image_cached" yaml:"image_cached"`
	// AudioPerMinute prices duration-billed transcription (usage
	// {"type":"duration"}) in nano-dollars per minute of input audio.
	AudioPerMinute int64 `json:"audio_per_minute,omitempty" yaml:"audio_per_minute"`
}

// Table maps a model name to its price. Lookups also match dated snapshots:
// "gpt-realtime-2025-08-28" is priced as "gpt-realtime".
type Table map[string]Price

// USD converts a listed "USD per 1M tokens" price (e.g. 0.06) to the
// table's unit, rounding to the nearest nano-dollar.
func USD(perMillion float64) int64 { return int64(math.Round(perMillion * 1e9)) }

// NanoToUSD converts nano-dollars to dollars for display.
func NanoToUSD(nano int64) float64 { return float64(nano) / 1e9 }

// DefaultTable returns the built-in prices (protocol notes §9 and §12, USD
// per 1M tokens as listed on developers.openai.com); it prices every model
// of policy.KnownModels, dated snapshots through Lookup. Image prices:
// gpt-realtime family 5.00 / cached 0.50 (gpt-realtime-1.5 page); mini
// models 0.80 / cached 0.08. Transcription models: gpt-4o-transcribe (and
// -diarize) audio in 6.00, text in 2.50, text out 10.00;
// gpt-4o-mini-transcribe 3.00 / 1.25 / 5.00; duration-billed whisper-1
// 0.006, gpt-realtime-whisper and gpt-live-transcribe 0.017, gpt-transcribe
// 0.0045 USD per minute. A fresh map is returned on every call, so callers
// may override entries from configuration.
func DefaultTable() Table {
	full := Price{
		TextIn: USD(4), TextCached: USD(0.40), TextOut: USD(16),
		AudioIn: USD(32), AudioCached: USD(0.40), AudioOut: USD(64),
		ImageIn: USD(5), ImageCached: USD(0.50),
	}
	mini := Price{
		TextIn: USD(0.60), TextCached: USD(0.06), TextOut: USD(2.40),
		AudioIn: USD(10), AudioCached: USD(0.30), AudioOut: USD(20),
		ImageIn: USD(0.80), ImageCached: USD(0.08),
	}
	v2 := full
	v2.TextOut = USD(24)
	transcribe := Price{TextIn: USD(2.50), TextOut: USD(10), AudioIn: USD(6)}
	return Table{
		"gpt-4o-transcribe":         transcribe,
		"gpt-4o-transcribe-diarize": transcribe,
		"gpt-4o-mini-transcribe":    {TextIn: USD(1.25), TextOut: USD(5), AudioIn: USD(3)},
		"whisper-1":                 {AudioPerMinute: USD(0.006)},
		"gpt-realtime-whisper":      {AudioPerMinute: USD(0.017)},
		"gpt-live-transcribe":       {AudioPerMinute: USD(0.017)},
		"gpt-transcribe":            {AudioPerMinute: USD(0.0045)},
		"gpt-realtime":              full,
		"gpt-realtime-1.5":          full,
		"gpt-realtime-2":            v2,
		"gpt-realtime-2.1":          v2,
		"gpt-realtime-mini":         mini,
		"gpt-realtime-2.1-mini":     mini,
		"gpt-4o-realtime-preview": {
			TextIn: USD(5), TextCached: USD(2.50), TextOut: USD(20),
			AudioIn: USD(40), AudioCached: USD(2.50), AudioOut: USD(80),
		},
		"gpt-4o-mini-realtime-preview": {
			TextIn: USD(0.60), TextCached: USD(0.30), TextOut: USD(2.40),
			AudioIn: USD(10), AudioCached: USD(0.30), AudioOut: USD(20),
		},
	}
}

// datedSuffix matches a snapshot date at the end of a model name.
var datedSuffix = regexp.MustCompile(`-\d{4}-\d{2}-\d{2}$`)

// Lookup returns the price of model, trying the exact name first and then
// the name without a trailing "-YYYY-MM-DD" snapshot date.
func (t Table) Lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	if base := datedSuffix.ReplaceAllString(model, ""); base != model {
		p, ok := t[base]
		return p, ok
	}
	if base, ok := strings.CutSuffix(model, "-latest"); ok {
		p, ok := t[base]
		return p, ok
	}
	return Price{}, false
}

// Merge returns a new table with t's prices overridden and extended by
// o's (configuration over the built-in defaults).
func (t Table) Merge(o Table) Table {
	out := make(Table, len(t)+len(o))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range o {
		out[k] = v
	}
	return out
}
