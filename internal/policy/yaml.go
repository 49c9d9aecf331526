package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// TierConfig is one tier as written in the configuration file. Absent
// fields inherit DefaultTier's values; an explicitly empty list (e.g.
// `locked_fields: []`) means "none".
type TierConfig struct {
	TokenTTLDefaultSeconds  *int               `yaml:"token_ttl_default_seconds"`
	TokenTTLMaxSeconds      *int               `yaml:"token_ttl_max_seconds"`
	MaxSessionSeconds       *int               `yaml:"max_session_seconds"`
	IdleTimeoutSeconds      *int               `yaml:"idle_timeout_seconds"`
	Budget                  *BudgetConfig      `yaml:"budget"`
	Concurrency             *ConcurrencyConfig `yaml:"concurrency"`
	Rates                   *RatesConfig       `yaml:"rates"`
	AllowedModels           *[]string          `yaml:"allowed_models"`
	AllowedVoices           *[]string          `yaml:"allowed_voices"`
	LockedFields            *[]string          `yaml:"locked_fields"`
	AllowedEvents           *[]string          `yaml:"allowed_events"`
	MaxEventBytes           *int               `yaml:"max_event_bytes"`
	WarnBeforeExpirySeconds *int               `yaml:"warn_before_expiry_seconds"`
}

// BudgetConfig is the YAML form of Budget (dollars; 0 = unlimited).
type BudgetConfig struct {
	SessionUSD     *float64 `yaml:"session_usd"`
	UserDayUSD     *float64 `yaml:"user_day_usd"`
	UserMonthUSD   *float64 `yaml:"user_month_usd"`
	AppKeyMonthUSD *float64 `yaml:"app_key_month_usd"`
}

// ConcurrencyConfig is the YAML form of Concurrency.
type ConcurrencyConfig struct {
	PerUser     *int `yaml:"per_user"`
	PerAppKey   *int `yaml:"per_app_key"`
	PerInstance *int `yaml:"per_instance"`
}

// RatesConfig is the YAML form of Rates.
type RatesConfig struct {
	MintsPerUserPerMinute    *int `yaml:"mints_per_user_per_minute"`
	MintsPerAppKeyPerMinute  *int `yaml:"mints_per_app_key_per_minute"`
	ConnectsPerUserPerMinute *int `yaml:"connects_per_user_per_minute"`
	EventsPerSecond          *int `yaml:"events_per_second"`
	ResponsesPerMinute       *int `yaml:"responses_per_minute"`
}

// TiersFromYAML reads the `tiers:` section of a configuration document
// (other top-level keys are ignored; unknown keys inside a tier are errors)
// and returns the validated tiers by name. A "default" tier is always
// present: DefaultTier unless the document defines one. Errors name the
// offending field, e.g. "tiers.pro.budget.user_day_usd: must be ≥ 0".
func TiersFromYAML(data []byte) (map[string]Tier, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("tiers: %w", err)
	}
	section, ok := doc["tiers"]
	if !ok || section == nil {
		return TiersFromConfig(nil)
	}
	byName, ok := section.(map[string]any)
	if !ok {
		return nil, errors.New("tiers: must be a mapping of tier names to tiers")
	}
	cfgs := make(map[string]TierConfig, len(byName))
	for name, v := range byName {
		// Each tier is decoded on its own so an error can name it.
		raw, err := yaml.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("tiers.%s: %w", name, err)
		}
		var c TierConfig
		if v != nil {
			if err := yaml.UnmarshalWithOptions(raw, &c, yaml.DisallowUnknownField()); err != nil {
				return nil, fmt.Errorf("tiers.%s: %s", name, oneLine(err))
			}
		}
		cfgs[name] = c
	}
	return TiersFromConfig(cfgs)
}

// TiersFromConfig builds and validates tiers from their configuration, for
// a config package that decodes the file itself.
func TiersFromConfig(cfgs map[string]TierConfig) (map[string]Tier, error) {
	names := make([]string, 0, len(cfgs))
	for name := range cfgs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]Tier, len(cfgs)+1)
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, " .\t\n") {
			return nil, fmt.Errorf("tiers.%q: tier names must be non-empty without spaces or dots", name)
		}
		t, err := cfgs[name].Tier(name)
		if err != nil {
			return nil, fmt.Errorf("tiers.%s.%w", name, err)
		}
		out[name] = t
	}
	if _, ok := out["default"]; !ok {
		out["default"] = DefaultTier()
	}
	return out, nil
}

// Tier applies c over DefaultTier and validates the result. Errors read
// "field: problem".
func (c TierConfig) Tier(name string) (Tier, error) {
	t := DefaultTier()
	t.Name = name
	seconds := func(dst *time.Duration, v *int) {
		if v != nil {
			*dst = time.Duration(*v) * time.Second
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setF := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	setList := func(dst *[]string, v *[]string) {
		if v != nil {
			*dst = slices.Clone(*v)
			if *dst == nil {
				*dst = []string{}
			}
		}
	}
	seconds(&t.TokenTTLDefault, c.TokenTTLDefaultSeconds)
	seconds(&t.TokenTTLMax, c.TokenTTLMaxSeconds)
	seconds(&t.WarnBeforeExpiry, c.WarnBeforeExpirySeconds)
	setInt(&t.MaxSessionSeconds, c.MaxSessionSeconds)
	setInt(&t.IdleTimeoutSeconds, c.IdleTimeoutSeconds)
	setInt(&t.MaxEventBytes, c.MaxEventBytes)
	if b := c.Budget; b != nil {
		setF(&t.Budget.SessionUSD, b.SessionUSD)
		setF(&t.Budget.UserDayUSD, b.UserDayUSD)
		setF(&t.Budget.UserMonthUSD, b.UserMonthUSD)
		setF(&t.Budget.AppKeyMonthUSD, b.AppKeyMonthUSD)
	}
	if cc := c.Concurrency; cc != nil {
		setInt(&t.Concurrency.PerUser, cc.PerUser)
		setInt(&t.Concurrency.PerAppKey, cc.PerAppKey)
		setInt(&t.Concurrency.PerInstance, cc.PerInstance)
	}
	if r := c.Rates; r != nil {
		setInt(&t.Rates.MintsPerUserPerMinute, r.MintsPerUserPerMinute)
		setInt(&t.Rates.MintsPerAppKeyPerMinute, r.MintsPerAppKeyPerMinute)
		setInt(&t.Rates.ConnectsPerUserPerMinute, r.ConnectsPerUserPerMinute)
		setInt(&t.Rates.EventsPerSecond, r.EventsPerSecond)
		setInt(&t.Rates.ResponsesPerMinute, r.ResponsesPerMinute)
	}
	setList(&t.AllowedModels, c.AllowedModels)
	setList(&t.AllowedVoices, c.AllowedVoices)
	setList(&t.LockedFields, c.LockedFields)
	setList(&t.AllowedEvents, c.AllowedEvents)
	if err := t.Validate(); err != nil {
		return Tier{}, err
	}
	return t, nil
}

// oneLine renders a YAML decoding error without the source excerpt.
func oneLine(err error) string {
	msg := strings.Join(strings.Fields(yaml.FormatError(err, false, false)), " ")
	// Drop the "[line:col]" prefix: positions are relative to the tier.
	if strings.HasPrefix(msg, "[") {
		if _, rest, ok := strings.Cut(msg, "] "); ok {
			msg = rest
		}
	}
	return msg
}
