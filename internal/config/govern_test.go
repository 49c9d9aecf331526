package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/policy"
)

// TestTierGovernanceKeys: a tier's governance sections are read in
// policy's schema; sections left out keep limits off.
func TestTierGovernanceKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	yml := `
tiers:
  pro:
    models: [gpt-realtime-mini]
    transcription: true
    max_session_seconds: 600
    budget_usd: 0.5
    budget: {user_day_usd: 2}
    concurrency: {per_user: 3, per_instance: 100}
    rates: {events_per_second: 50, connects_per_user_per_minute: 5}
    locked_fields: [instructions]
    warn_before_expiry_seconds: 10
`
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, []string{"--config", p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pro, err := cfg.Tiers["pro"].Policy("pro")
	if err != nil {
		t.Fatal(err)
	}
	if pro.Budget.SessionUSD != 0.5 || pro.Budget.UserDayUSD != 2 || pro.Concurrency.PerUser != 3 || pro.Concurrency.PerInstance != 100 ||
		pro.Rates.EventsPerSecond != 50 || pro.Rates.ConnectsPerUserPerMinute != 5 || pro.MaxSessionSeconds != 600 ||
		len(pro.LockedFields) != 1 || pro.WarnBeforeExpiry.Seconds() != 10 || pro.AllowedModels[0] != "gpt-realtime-mini" || !pro.Transcription {
		t.Errorf("pro = %+v", pro)
	}
	def, err := cfg.Tiers["default"].Policy("default")
	if err != nil {
		t.Fatal(err)
	}
	// The built-in default tier: the safe defaults only.
	if def.Rates != (policy.Rates{MintsPerUserPerMinute: 10}) || def.Budget.UserDayUSD != 0 || def.Concurrency != (policy.Concurrency{PerUser: 2}) ||
		def.MaxSessionSeconds != 1800 || def.Transcription {
		t.Errorf("built-in default tier: %+v", def)
	}
	// A default tier in the file replaces it: sections left out, limits off.
	own := filepath.Join(t.TempDir(), "own.yaml")
	_ = os.WriteFile(own, []byte("tiers: {default: {max_session_seconds: 600}}"), 0o600)
	cfg, err = load(t, []string{"--config", own}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def, err = cfg.Tiers["default"].Policy("default"); err != nil || def.Rates != (policy.Rates{}) || def.Concurrency != (policy.Concurrency{}) || def.MaxSessionSeconds != 600 {
		t.Errorf("file default tier: %+v, %v", def, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("tiers: {x: {rates: {events_per_second: -1}}}"), 0o600)
	if _, err := load(t, []string{"--config", bad}, nil); err == nil || !strings.Contains(err.Error(), "tiers.x.rates.events_per_second") {
		t.Errorf("err = %v", err)
	}
}
