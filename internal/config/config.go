// Package config builds voicegate's typed configuration from, in rising
// precedence: built-in defaults, an optional YAML file (--config), the
// environment (VOICEGATE_<FLAG>) and command-line flags. Load validates the
// result once, at start-up, with messages that name the offending setting.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
)

// Config is the whole gateway configuration.
type Config struct {
	Addr     string `yaml:"addr"`     // listen address
	Store    string `yaml:"store"`    // "sqlite:PATH" | "memory" | "redis://…"
	Upstream string `yaml:"upstream"` // base URL of the Realtime API, or "sim"
	// OpenAIAPIKey is the server key, read only from OPENAI_API_KEY (or
	// VOICEGATE_OPENAI_API_KEY / the YAML file); never a flag so it does
	// not show in process listings.
	OpenAIAPIKey Secret `yaml:"openai_api_key"`
	AdminKey     Secret `yaml:"admin_key"`
	// DebugAddr, when set, serves Go's profiling endpoints (/debug/pprof/:
	// CPU, heap, goroutines, traces; never the command line) on their own
	// listener, for operators and the benchmark harness. It carries no
	// authentication: bind it to loopback.
	DebugAddr string `yaml:"debug_addr"`
	// MetricsToken, when set, is required as a Bearer token by GET
	// /metrics (empty: /metrics is open, as for a private network).
	MetricsToken   Secret   `yaml:"metrics_token"`
	TLSCert        string   `yaml:"tls_cert"`
	TLSKey         string   `yaml:"tls_key"`
	AllowedOrigins []string `yaml:"allowed_origins"` // empty = any origin; "*" = any
	LogFormat      string   `yaml:"log_format"`      // json | text
	LogLevel       string   `yaml:"log_level"`       // debug | info | warn | error
	Instance       string   `yaml:"instance"`        // instance id (default: hostname-pid)
	// SpoolDir holds the durability spool of a redis store (default
	// os.UserCacheDir()/voicegate/spool/<instance>).
	SpoolDir string `yaml:"spool_dir"`
	// ShutdownTimeout bounds the graceful drain of live sessions.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LeaseTTL bounds how long the concurrency leases of a crashed
	// instance outlive it; live sessions renew theirs every LeaseTTL/3.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// AuditRetention is how long the SQLite and Redis stores keep audit
	// records other than mints, ends, revocations and keys created (kept
	// forever); 0 keeps every record.
	AuditRetention time.Duration `yaml:"audit_retention"`
	// Durable makes the SQLite store acknowledge a write only after fsync
	// (synchronous=FULL, with group commit: one fsync per batch of
	// writes). Off, a power loss may lose the last commits (never
	// corrupts the file). Other stores ignore it.
	Durable bool `yaml:"durable"`

	// Tiers by name; "default" always exists.
	Tiers map[string]Tier `yaml:"tiers"`
	// Login configures end-user login for minting (JWT or auth webhook).
	Login Login `yaml:"login"`
	// Prices override the built-in price table: model → USD per 1M tokens.
	Prices map[string]Price `yaml:"prices"`
}

// Tier is the small policy of a class of sessions. internal/policy replaces
// it with the full tier model later; keep it plain data.
type Tier struct {
	// TTLDefaultSeconds is expires_after.seconds when the mint omits it.
	TTLDefaultSeconds int `yaml:"ttl_default_seconds" json:"ttl_default_seconds"`
	// TTLMaxSeconds is the largest expires_after.seconds (≤ 7200).
	TTLMaxSeconds int `yaml:"ttl_max_seconds" json:"ttl_max_seconds"`
	// Models the tier may use; the first is the default model.
	Models []string `yaml:"models" json:"models"`
	// Transcription allows session.type "transcription".
	Transcription bool `yaml:"transcription" json:"transcription"`
	// Limits of every session of the tier; 0 = none.
	MaxSessionSeconds  int     `yaml:"max_session_seconds" json:"max_session_seconds"`
	IdleTimeoutSeconds int     `yaml:"idle_timeout_seconds" json:"idle_timeout_seconds"`
	BudgetUSD          float64 `yaml:"budget_usd" json:"budget_usd"`
	MaxConcurrent      int     `yaml:"max_concurrent" json:"max_concurrent"`

	// Governance of live sessions, in internal/policy's tier schema (see
	// docs/governance.md). A section left out keeps the behaviour above:
	// no budget beyond budget_usd, per-user concurrency max_concurrent, no
	// rate limits; a section given fills its unset fields from
	// policy.DefaultTier. Firewall keys left out take policy's defaults.
	Budget                  *policy.BudgetConfig      `yaml:"budget" json:"budget,omitempty"`
	Concurrency             *policy.ConcurrencyConfig `yaml:"concurrency" json:"concurrency,omitempty"`
	Rates                   *policy.RatesConfig       `yaml:"rates" json:"rates,omitempty"`
	AllowedVoices           *[]string                 `yaml:"allowed_voices" json:"allowed_voices,omitempty"`
	LockedFields            *[]string                 `yaml:"locked_fields" json:"locked_fields,omitempty"`
	AllowedEvents           *[]string                 `yaml:"allowed_events" json:"allowed_events,omitempty"`
	MaxEventBytes           *int                      `yaml:"max_event_bytes" json:"max_event_bytes,omitempty"`
	WarnBeforeExpirySeconds *int                      `yaml:"warn_before_expiry_seconds" json:"warn_before_expiry_seconds,omitempty"`
}

// Policy is the tier in internal/policy's model, named name: the keys
// above mapped onto policy.TierConfig over policy.DefaultTier (see the
// field comments for sections left out). Errors name the policy field.
func (t Tier) Policy(name string) (policy.Tier, error) {
	zero := 0
	ttlDef, ttlMax := t.TTLDefaultSeconds, t.TTLMaxSeconds
	maxSess, idle := t.MaxSessionSeconds, t.IdleTimeoutSeconds
	pc := policy.TierConfig{
		TokenTTLDefaultSeconds: &ttlDef, TokenTTLMaxSeconds: &ttlMax,
		MaxSessionSeconds: &maxSess, IdleTimeoutSeconds: &idle,
		Budget: t.Budget, Concurrency: t.Concurrency, Rates: t.Rates,
		AllowedVoices: t.AllowedVoices, LockedFields: t.LockedFields, AllowedEvents: t.AllowedEvents,
		MaxEventBytes: t.MaxEventBytes, WarnBeforeExpirySeconds: t.WarnBeforeExpirySeconds,
	}
	if len(t.Models) > 0 {
		models := slices.Clone(t.Models)
		pc.AllowedModels = &models
	}
	if pc.Budget == nil {
		session, none := t.BudgetUSD, 0.0
		pc.Budget = &policy.BudgetConfig{SessionUSD: &session, UserDayUSD: &none, UserMonthUSD: &none, AppKeyMonthUSD: &none}
	} else if pc.Budget.SessionUSD == nil && t.BudgetUSD > 0 {
		b := *pc.Budget
		session := t.BudgetUSD
		b.SessionUSD = &session
		pc.Budget = &b
	}
	if pc.Concurrency == nil {
		perUser := t.MaxConcurrent
		pc.Concurrency = &policy.ConcurrencyConfig{PerUser: &perUser, PerAppKey: &zero, PerInstance: &zero}
	}
	if pc.Rates == nil {
		pc.Rates = &policy.RatesConfig{MintsPerUserPerMinute: &zero, MintsPerAppKeyPerMinute: &zero,
			ConnectsPerUserPerMinute: &zero, EventsPerSecond: &zero, ResponsesPerMinute: &zero}
	}
	pt, err := pc.Tier(name)
	if err != nil {
		return policy.Tier{}, err
	}
	pt.Transcription = t.Transcription
	return pt, nil
}

// Secret is a credential in the configuration: it prints as REDACTED.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString redacts the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// Login is end-user login for minting: a JWT checked with an HS256 secret
// or a JWKS (file or URL), and/or an auth webhook for cookie sessions.
// Everything empty disables end-user login.
type Login struct {
	JWTHS256Secret Secret `yaml:"jwt_hs256_secret"`
	JWKSFile       string `yaml:"jwks_file"`
	JWKSURL        string `yaml:"jwks_url"`
	JWTIssuer      string `yaml:"jwt_issuer"`
	JWTAudience    string `yaml:"jwt_audience"`
	// JWTTierClaim names the claim carrying the user's tier (dotted for
	// nested claims); "" gives every user the default tier.
	JWTTierClaim string `yaml:"jwt_tier_claim"`
	// AuthWebhookURL receives the caller's Authorization and Cookie headers
	// and answers {user, tier} with a 2xx to accept.
	AuthWebhookURL string `yaml:"auth_webhook_url"`
}

// JWTEnabled reports whether a JWT key source is configured.
func (l Login) JWTEnabled() bool {
	return l.JWTHS256Secret != "" || l.JWKSFile != "" || l.JWKSURL != ""
}

// validate checks the login settings.
func (l Login) validate(bad func(format string, a ...any)) {
	if l.JWTHS256Secret != "" && len(l.JWTHS256Secret) < 32 {
		bad("login.jwt_hs256_secret: must be at least 32 bytes (got %d)", len(l.JWTHS256Secret))
	}
	if l.JWKSFile != "" && l.JWKSURL != "" {
		bad("login.jwks_file and login.jwks_url: set one, not both")
	}
	if l.JWKSURL != "" {
		if u, err := url.Parse(l.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("login.jwks_url: %q is not an absolute http(s) URL", l.JWKSURL)
		}
	}
	if l.AuthWebhookURL != "" {
		if u, err := url.Parse(l.AuthWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("login.auth_webhook_url: %q is not an absolute http(s) URL", l.AuthWebhookURL)
		}
	}
	if !l.JWTEnabled() && (l.JWTIssuer != "" || l.JWTAudience != "" || l.JWTTierClaim != "") {
		bad("login.jwt_issuer/jwt_audience/jwt_tier_claim: need jwt_hs256_secret, jwks_file or jwks_url")
	}
}

// Safe defaults of the built-in "default" tier (README, "Safe defaults"):
// one user cannot mint faster, hold more live sessions or talk longer than
// this unless the configuration says so.
const (
	DefaultMintsPerUserPerMinute = 10
	DefaultMaxConcurrentPerUser  = 2
	DefaultMaxSessionSeconds     = 1800
)

// DefaultTier is the built-in "default" tier, used when the configuration
// defines none. A "default" tier in the file replaces it (TTLs and models
// are inherited, limits are not).
func DefaultTier() Tier {
	mints, none := DefaultMintsPerUserPerMinute, 0
	return Tier{
		TTLDefaultSeconds: 600,
		TTLMaxSeconds:     7200,
		Models:            slices.Clone(policy.KnownModels), // the SDKs' defaults included

		MaxSessionSeconds: DefaultMaxSessionSeconds,
		MaxConcurrent:     DefaultMaxConcurrentPerUser,
		Rates: &policy.RatesConfig{MintsPerUserPerMinute: &mints, MintsPerAppKeyPerMinute: &none,
			ConnectsPerUserPerMinute: &none, EventsPerSecond: &none, ResponsesPerMinute: &none},
	}
}

// Default returns the configuration before any file, env or flag.
func Default() *Config {
	return &Config{
		Addr:            ":8080",
		Store:           "sqlite:voicegate.db",
		Upstream:        "https://api.openai.com/v1",
		LogFormat:       "json",
		LogLevel:        "info",
		ShutdownTimeout: 10 * time.Second,
		LeaseTTL:        DefaultLeaseTTL,
		AuditRetention:  DefaultAuditRetention,
		Tiers:           map[string]Tier{"default": DefaultTier()},
	}
}

// DefaultAuditRetention is the audit retention when none is configured.
const DefaultAuditRetention = 30 * 24 * time.Hour

// DefaultLeaseTTL is the lease TTL when none is configured.
const DefaultLeaseTTL = 15 * time.Second

// MinLeaseTTL is the shortest accepted lease_ttl: renewals run every
// third of it, so shorter values would mostly measure Redis latency.
const MinLeaseTTL = time.Second

// MinAdminKeyLen is the shortest accepted --admin-key.
const MinAdminKeyLen = 32

// Validate checks every setting and fills derived defaults (tiers inherit
// unset fields from the default tier). Errors name the setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Addr == "" {
		bad("addr: must not be empty")
	}
	if _, _, err := ParseStore(c.Store); err != nil {
		bad("store: %w", err)
	}
	if c.Upstream != "sim" {
		u, err := url.Parse(c.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("upstream: %q is not an http(s) base URL or \"sim\"", c.Upstream)
		}
	}
	if c.AdminKey != "" && len(c.AdminKey) < MinAdminKeyLen {
		bad("admin_key: must be at least %d characters (got %d)", MinAdminKeyLen, len(c.AdminKey))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert and tls_key: set both or neither")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("allowed_origins: %q is not an origin like https://app.example.com", o)
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log_format: %q is not json or text", c.LogFormat)
	}
	if _, err := c.SlogLevel(); err != nil {
		bad("log_level: %w", err)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout: must not be negative")
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	} else if c.LeaseTTL < MinLeaseTTL {
		bad("lease_ttl: %v is shorter than %v", c.LeaseTTL, MinLeaseTTL)
	}
	if c.Tiers == nil {
		c.Tiers = map[string]Tier{}
	}
	def, ok := c.Tiers["default"]
	if !ok {
		def = DefaultTier()
	} else {
		def = inherit(def, DefaultTier())
	}
	c.Tiers["default"] = def
	for name, t := range c.Tiers {
		t = inherit(t, def)
		c.Tiers[name] = t
		p := "tiers." + name
		if t.TTLMaxSeconds < 10 || t.TTLMaxSeconds > 7200 {
			bad("%s.ttl_max_seconds: %d is outside 10–7200", p, t.TTLMaxSeconds)
		}
		if t.TTLDefaultSeconds < 10 || t.TTLDefaultSeconds > t.TTLMaxSeconds {
			bad("%s.ttl_default_seconds: %d is outside 10–ttl_max_seconds (%d)", p, t.TTLDefaultSeconds, t.TTLMaxSeconds)
		}
		if t.MaxSessionSeconds < 0 || t.IdleTimeoutSeconds < 0 || t.BudgetUSD < 0 || t.MaxConcurrent < 0 {
			bad("%s: limits must not be negative", p)
		}
		for _, m := range t.Models {
			if m == "" {
				bad("%s.models: empty model name", p)
			}
		}
	}
	c.Login.validate(bad)
	c.validatePrices(bad)
	prices := c.PriceTable()
	for _, name := range slices.Sorted(maps.Keys(c.Tiers)) {
		pt, err := c.Tiers[name].Policy(name)
		if err != nil {
			bad("tiers.%s.%w", name, err)
			continue
		}
		checkPriced(bad, name, pt.AllowedModels, prices)
	}
	return errors.Join(errs...)
}

// inherit fills t's zero TTLs and models from base. Limits are not
// inherited: zero there means "no limit".
func inherit(t, base Tier) Tier {
	if t.TTLDefaultSeconds == 0 {
		t.TTLDefaultSeconds = base.TTLDefaultSeconds
	}
	if t.TTLMaxSeconds == 0 {
		t.TTLMaxSeconds = base.TTLMaxSeconds
	}
	if t.TTLDefaultSeconds > t.TTLMaxSeconds && t.TTLMaxSeconds > 0 {
		t.TTLDefaultSeconds = t.TTLMaxSeconds
	}
	if len(t.Models) == 0 {
		t.Models = base.Models
	}
	return t
}

// SlogLevel parses LogLevel.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// OriginAllowed reports whether a browser Origin header may connect. An
// empty Origin (non-browser clients) is always allowed; an empty allow-list
// allows every origin.
func (c *Config) OriginAllowed(origin string) bool {
	if origin == "" || len(c.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// ParseStore splits a --store value into a kind ("sqlite", "memory",
// "redis") and its location.
func ParseStore(s string) (kind, location string, err error) {
	switch {
	case s == "memory":
		return "memory", "", nil
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		if p == "" {
			return "", "", errors.New(`"sqlite:" needs a path, e.g. sqlite:voicegate.db`)
		}
		return "sqlite", p, nil
	case strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "rediss://"):
		return "redis", s, nil
	}
	return "", "", fmt.Errorf("%q is not sqlite:PATH, memory or redis://…", s)
}

// PolicyTiers maps every configured tier to the policy that governs it:
// the one resolution of tiers, handed to the governor. Validate has
// checked that each maps.
func (c *Config) PolicyTiers() (map[string]policy.Tier, error) {
	out := make(map[string]policy.Tier, len(c.Tiers))
	for name, ct := range c.Tiers {
		t, err := ct.Policy(name)
		if err != nil {
			return out, fmt.Errorf("tiers.%s.%w", name, err)
		}
		out[name] = t
	}
	return out, nil
}
