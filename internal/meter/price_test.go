package meter_test

import (
	"testing"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
)

// TestDefaultTablePricesKnownModels: every model the default tier allows
// has a built-in price, so no session of it is metered at $0. An external
// test package, so policy may one day import meter without a cycle.
func TestDefaultTablePricesKnownModels(t *testing.T) {
	tab := meter.DefaultTable()
	for _, m := range policy.KnownModels {
		p, ok := tab.Lookup(m)
		if !ok {
			t.Errorf("policy.KnownModels has %q but DefaultTable does not price it", m)
			continue
		}
		if p.TextIn == 0 || p.TextOut == 0 || p.AudioIn == 0 || p.AudioOut == 0 {
			t.Errorf("%s has a zero token price: %+v", m, p)
		}
	}
}

func TestDefaultTableRealtime21(t *testing.T) {
	tab := meter.DefaultTable()
	got, ok := tab.Lookup("gpt-realtime-2.1")
	want := meter.Price{
		TextIn: meter.USD(4), TextCached: meter.USD(0.40), TextOut: meter.USD(24),
		AudioIn: meter.USD(32), AudioCached: meter.USD(0.40), AudioOut: meter.USD(64),
		ImageIn: meter.USD(5), ImageCached: meter.USD(0.50),
	}
	if !ok || got != want {
		t.Errorf("gpt-realtime-2.1 = %+v, %v; want %+v", got, ok, want)
	}
	if p, _ := tab.Lookup("gpt-realtime-2.1-2026-03-01"); p != want {
		t.Errorf("dated gpt-realtime-2.1 snapshot = %+v, want the family price", p)
	}
}
