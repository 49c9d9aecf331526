package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTiersFromYAML(t *testing.T) {
	doc := []byte(`
addr: 127.0.0.1:8080   # other sections are not ours
tiers:
  free:
    token_ttl_default_seconds: 60
    token_ttl_max_seconds: 300
    max_session_seconds: 300
    idle_timeout_seconds: 30
    budget:
      session_usd: 0.1
      user_day_usd: 0.5
    concurrency: {per_user: 1, per_instance: 100}
    rates: {events_per_second: 50}
    allowed_models: [gpt-realtime-mini]
    allowed_voices: [marin]
    locked_fields: [model, instructions, tools, tool_choice, prompt, tracing, audio.output.voice]
    allowed_events: [input_audio_buffer.append, input_audio_buffer.commit, response.create, response.cancel]
    max_event_bytes: 1048576
    warn_before_expiry_seconds: 20
  pro:
    budget: {user_month_usd: 100}
    locked_fields: []
`)
	tiers, err := TiersFromYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(tiers) != 3 {
		t.Fatalf("tiers = %v, want free, pro and default", slices.Sorted(func(yield func(string) bool) {
			for k := range tiers {
				if !yield(k) {
					return
				}
			}
		}))
	}
	free := tiers["free"]
	if free.Name != "free" || free.TokenTTLDefault != time.Minute || free.TokenTTLMax != 5*time.Minute ||
		free.MaxSessionSeconds != 300 || free.IdleTimeoutSeconds != 30 || free.Budget.SessionUSD != 0.1 ||
		free.Budget.UserDayUSD != 0.5 || free.Budget.UserMonthUSD != 50 || free.Concurrency.PerUser != 1 ||
		free.Concurrency.PerInstance != 100 || free.Rates.EventsPerSecond != 50 || free.Rates.ResponsesPerMinute != 30 ||
		!slices.Equal(free.AllowedModels, []string{"gpt-realtime-mini"}) || !slices.Equal(free.AllowedVoices, []string{"marin"}) ||
		!slices.Contains(free.LockedFields, "audio.output.voice") || len(free.AllowedEvents) != 4 ||
		free.MaxEventBytes != 1<<20 || free.WarnBeforeExpiry != 20*time.Second {
		t.Errorf("free = %+v", free)
	}
	pro := tiers["pro"]
	if pro.Budget.UserMonthUSD != 100 || pro.Budget.SessionUSD != 1 || pro.LockedFields == nil || len(pro.LockedFields) != 0 {
		t.Errorf("pro = %+v", pro)
	}
	if def := tiers["default"]; def.Name != "default" || def.MaxSessionSeconds != DefaultTier().MaxSessionSeconds {
		t.Errorf("default = %+v", def)
	}
}

func TestTiersFromYAMLErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"tiers:\n  pro:\n    budget:\n      user_day_usd: -1\n", "tiers.pro.budget.user_day_usd: must be ≥ 0"},
		{"tiers:\n  pro:\n    token_ttl_max_seconds: 9000\n", "tiers.pro.token_ttl_max_seconds: must be between 10 and 7200"},
		{"tiers:\n  pro:\n    token_ttl_default_seconds: 3000\n    token_ttl_max_seconds: 600\n", "tiers.pro.token_ttl_default_seconds: must be ≤ token_ttl_max_seconds"},
		{"tiers:\n  pro:\n    concurrency: {per_user: -2}\n", "tiers.pro.concurrency.per_user: must be ≥ 0"},
		{"tiers:\n  pro:\n    allowed_events: [session.hack]\n", `tiers.pro.allowed_events[0]: unknown client event type "session.hack"`},
		{"tiers:\n  pro:\n    allowed_events: []\n", "tiers.pro.allowed_events: must not be empty"},
		{"tiers:\n  pro:\n    locked_fields: [voice]\n", `tiers.pro.locked_fields[0]: unknown session field "voice"`},
		{"tiers:\n  pro:\n    max_event_bytes: 10\n", "tiers.pro.max_event_bytes: must be ≥ 1024"},
		{"tiers:\n  pro:\n    budjet: {}\n", `tiers.pro: unknown field "budjet"`},
		{"tiers:\n  pro:\n    max_session_seconds: lots\n", "tiers.pro: cannot unmarshal"},
		{"tiers: [1, 2]\n", "tiers: must be a mapping"},
		{"tiers:\n  \"a b\": {}\n", "tier names"},
	}
	for _, tt := range tests {
		_, err := TiersFromYAML([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.doc, err, tt.want)
		}
	}
}

func TestTiersFromYAMLNoSection(t *testing.T) {
	tiers, err := TiersFromYAML([]byte("addr: x\n"))
	if err != nil || len(tiers) != 1 || tiers["default"].Name != "default" {
		t.Fatalf("got %v, %v", tiers, err)
	}
}
