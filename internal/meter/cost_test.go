package meter

import (
	"math"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

func TestDefaultTableUnits(t *testing.T) {
	tab := DefaultTable()
	for _, m := range []string{"gpt-realtime", "gpt-realtime-mini", "gpt-realtime-1.5", "gpt-realtime-2", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"} {
		if _, ok := tab[m]; !ok {
			t.Errorf("DefaultTable lacks %s", m)
		}
	}
	if got, want := tab["gpt-realtime"].TextIn, int64(4_000_000_000); got != want {
		t.Errorf("gpt-realtime text in = %d, want %d", got, want)
	}
	if got, want := tab["gpt-realtime-mini"].TextCached, int64(60_000_000); got != want {
		t.Errorf("gpt-realtime-mini cached text = %d, want %d", got, want)
	}
	if got, want := tab["gpt-realtime-2"].TextOut, int64(24_000_000_000); got != want {
		t.Errorf("gpt-realtime-2 text out = %d, want %d", got, want)
	}
}

func TestLookup(t *testing.T) {
	tab := DefaultTable()
	tests := []struct {
		model string
		want  string
		ok    bool
	}{
		{"gpt-realtime", "gpt-realtime", true},
		{"gpt-realtime-2025-08-28", "gpt-realtime", true},
		{"gpt-realtime-mini-2025-10-06", "gpt-realtime-mini", true},
		{"gpt-4o-realtime-preview-2024-12-17", "gpt-4o-realtime-preview", true},
		{"gpt-realtime-9", "", false},
		{"gpt-realtime-2025-08", "", false},
	}
	for _, tc := range tests {
		p, ok := tab.Lookup(tc.model)
		if ok != tc.ok || ok && p != tab[tc.want] {
			t.Errorf("Lookup(%q) = %+v, %v; want %s, %v", tc.model, p, ok, tc.want, tc.ok)
		}
	}
}

func TestCost(t *testing.T) {
	tab := DefaultTable()
	// The capture's response.done usage (protocol §4.5).
	capture := store.Usage{
		TotalTokens: 320, InputTokens: 132, OutputTokens: 188,
		InputTextTokens: 59, InputAudioTokens: 73, CachedTokens: 64, CachedAudioTokens: 64,
		OutputTextTokens: 41, OutputAudioTokens: 147,
	}
	tests := []struct {
		name  string
		model string
		u     store.Usage
		want  int64
	}{
		// 59×4 + 9×32 + 64×0.40 + 41×16 + 147×64 = 236+288+25.6+656+9408 = 10613.6 USD per 1M
		// tokens → 0.0106136 USD = 10,613,600 nano$.
		{"capture gpt-realtime", "gpt-realtime", capture, 10_613_600},
		{"dated snapshot", "gpt-realtime-2025-08-28", capture, 10_613_600},
		// mini: 59×0.6 + 9×10 + 64×0.3 + 41×2.4 + 147×20 = 35.4+90+19.2+98.4+2940 = 3183 → 3,183,000 nano$
		{"capture mini", "gpt-realtime-mini", capture, 3_183_000},
		{"one text token in", "gpt-realtime", store.Usage{InputTextTokens: 1}, 4000},
		{"one cached mini text token", "gpt-realtime-mini", store.Usage{InputTextTokens: 1, CachedTextTokens: 1}, 60},
		{"cached larger than input is clamped", "gpt-realtime", store.Usage{InputAudioTokens: 10, CachedAudioTokens: 20}, 10 * 400},
		{"negative ignored", "gpt-realtime", store.Usage{InputTextTokens: -5, OutputTextTokens: 1}, 16000},
		{"image", "gpt-realtime", store.Usage{InputImageTokens: 10, CachedImageTokens: 4}, 6*5000 + 4*500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tab.Cost(tc.model, tc.u)
			if !ok || got != tc.want {
				t.Errorf("Cost = %d, %v; want %d", got, ok, tc.want)
			}
		})
	}
	// Rounding happens once, half up, on the exact total.
	frac := Table{"m": {TextIn: 1, TextOut: 1}} // 1 nano$ per 1M tokens
	for _, rc := range []struct {
		in, out int64
		want    int64
	}{{499_999, 0, 0}, {500_000, 0, 1}, {250_000, 250_000, 1}, {1_499_999, 0, 1}, {1_000_000, 500_000, 2}} {
		if got, _ := frac.Cost("m", store.Usage{InputTextTokens: rc.in, OutputTextTokens: rc.out}); got != rc.want {
			t.Errorf("Cost(in %d, out %d) = %d, want %d", rc.in, rc.out, got, rc.want)
		}
	}
	if got, ok := tab.Cost("unknown-model", capture); ok || got != 0 {
		t.Errorf("Cost(unknown) = %d, %v; want 0, false", got, ok)
	}
}

func TestCostHuge(t *testing.T) {
	tab := DefaultTable()
	got, ok := tab.Cost("gpt-realtime", store.Usage{OutputAudioTokens: math.MaxInt64})
	if !ok || got != math.MaxInt64 {
		t.Errorf("Cost(huge) = %d, want saturation at MaxInt64", got)
	}
	// 1e12 tokens × 64e9 overflows int64 in a naive product but not here.
	got, _ = tab.Cost("gpt-realtime", store.Usage{OutputAudioTokens: 1e12})
	if want := int64(64e15); got != want {
		t.Errorf("Cost(1e12 audio out) = %d, want %d", got, want)
	}
}

func TestMaxCost(t *testing.T) {
	tab := DefaultTable()
	// 1000 input tokens at the audio rate (32 $/1M = 32,000 nano$ each) + 4096 output at 64,000.
	if got, want := tab.MaxCost("gpt-realtime", 4096, 1000), int64(1000*32000+4096*64000); got != want {
		t.Errorf("MaxCost = %d, want %d", got, want)
	}
	// Bounded cost always covers the actual cost of any usage within the bounds.
	u := store.Usage{InputTextTokens: 500, InputAudioTokens: 500, OutputTextTokens: 96, OutputAudioTokens: 4000}
	actual, _ := tab.Cost("gpt-realtime", u)
	if bound := tab.MaxCost("gpt-realtime", 4096, 1000); actual > bound {
		t.Errorf("actual %d > bound %d", actual, bound)
	}
	// Unknown models are priced at the dearest rates.
	if got, want := tab.MaxCost("mystery", 10, 10), int64(10*40000+10*80000); got != want {
		t.Errorf("MaxCost(unknown) = %d, want %d", got, want)
	}
	// Rounded up, not half up.
	frac := Table{"m": {TextIn: 1, TextOut: 1}}
	if got := frac.MaxCost("m", 0, 1); got != 1 {
		t.Errorf("MaxCost(fractional) = %d, want 1", got)
	}
}

func TestMaxOutputTokensFor(t *testing.T) {
	tab := DefaultTable()
	budget := tab.MaxCost("gpt-realtime", 100, 50)
	if got := tab.MaxOutputTokensFor("gpt-realtime", budget, 50); got != 100 {
		t.Errorf("MaxOutputTokensFor = %d, want 100", got)
	}
	if got := tab.MaxOutputTokensFor("gpt-realtime", budget-1, 50); got != 99 {
		t.Errorf("MaxOutputTokensFor(budget-1) = %d, want 99", got)
	}
	if got := tab.MaxOutputTokensFor("gpt-realtime", 10, 50); got != 0 {
		t.Errorf("MaxOutputTokensFor(tiny) = %d, want 0", got)
	}
}

func TestMerge(t *testing.T) {
	def := DefaultTable()
	custom := Price{TextIn: USD(1)}
	m := def.Merge(Table{"gpt-realtime": custom, "my-model": custom})
	if m["gpt-realtime"] != custom || m["my-model"] != custom || m["gpt-realtime-mini"] != def["gpt-realtime-mini"] {
		t.Errorf("Merge = %+v", m)
	}
	if def["gpt-realtime"] == custom {
		t.Error("Merge modified its receiver")
	}
	if got, _ := m.Cost("gpt-realtime-2025-08-28", store.Usage{InputTextTokens: 1_000_000}); got != 1e9 {
		t.Errorf("overridden dated lookup cost = %d", got)
	}
}
