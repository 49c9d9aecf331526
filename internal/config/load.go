package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// setting is one flag-backed configuration field.
type setting struct {
	name  string // flag name; env is VOICEGATE_ + upper snake
	usage string
	set   func(c *Config, v string) error
}

// boolSettings may be given as a flag alone, meaning true (--durable).
var boolSettings = map[string]bool{"durable": true}

var settings = []setting{
	{"addr", "listen address (host:port)", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"store", "storage: sqlite:PATH, memory or redis://[:password@]host:port/db", func(c *Config, v string) error { c.Store = v; return nil }},
	{"durable", "sqlite store: acknowledge writes only after fsync (true or false; default false: a power loss may lose the last commits)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		c.Durable = b
		return nil
	}},
	{"upstream", `Realtime API base URL, or "sim" for the built-in simulator`, func(c *Config, v string) error { c.Upstream = v; return nil }},
	{"admin-key", "bootstrap admin credential (at least 32 characters)", func(c *Config, v string) error { c.AdminKey = Secret(v); return nil }},
	{"debug-addr", "listen address of the Go profiling endpoints /debug/pprof/ (empty = off; keep it on loopback)", func(c *Config, v string) error { c.DebugAddr = v; return nil }},
	{"metrics-token", "Bearer token GET /metrics requires (empty = /metrics is open)", func(c *Config, v string) error { c.MetricsToken = Secret(v); return nil }},
	{"tls-cert", "TLS certificate file (PEM)", func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{"tls-key", "TLS private key file (PEM)", func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{"allowed-origins", "comma-separated browser origins allowed to connect (empty = any)", func(c *Config, v string) error {
		c.AllowedOrigins = splitList(v)
		return nil
	}},
	{"log-format", "log format: json or text", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"log-level", "log level: debug, info, warn or error", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"instance", "instance id for audit and leases (default hostname-pid)", func(c *Config, v string) error { c.Instance = v; return nil }},
	{"spool-dir", "redis store: directory spooling metering writes while Redis is unreachable (default user cache dir/voicegate/spool/<instance>)", func(c *Config, v string) error { c.SpoolDir = v; return nil }},
	{"jwt-hs256-secret", "end-user login: HS256 secret of user JWTs (at least 32 bytes)", func(c *Config, v string) error { c.Login.JWTHS256Secret = Secret(v); return nil }},
	{"jwks-file", "end-user login: JSON Web Key Set file verifying user JWTs", func(c *Config, v string) error { c.Login.JWKSFile = v; return nil }},
	{"jwks-url", "end-user login: JSON Web Key Set URL verifying user JWTs (cached, refetched on unknown kid)", func(c *Config, v string) error { c.Login.JWKSURL = v; return nil }},
	{"jwt-issuer", "end-user login: required iss claim of user JWTs", func(c *Config, v string) error { c.Login.JWTIssuer = v; return nil }},
	{"jwt-audience", "end-user login: required aud claim of user JWTs", func(c *Config, v string) error { c.Login.JWTAudience = v; return nil }},
	{"jwt-tier-claim", "end-user login: claim naming the user's tier (dotted for nested)", func(c *Config, v string) error { c.Login.JWTTierClaim = v; return nil }},
	{"auth-webhook-url", "end-user login: URL vouching for cookie sessions with {user, tier}", func(c *Config, v string) error { c.Login.AuthWebhookURL = v; return nil }},
	{"shutdown-timeout", "graceful shutdown bound (e.g. 10s)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 10s", v)
		}
		c.ShutdownTimeout = d
		return nil
	}},
	{"audit-retention", "how long audit records other than mints, ends, revocations and keys created are kept (e.g. 720h; 0 keeps all)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration like 720h", v)
		}
		c.AuditRetention = d
		return nil
	}},
	{"lease-ttl", "lifetime of a concurrency lease not renewed: a killed instance's live-session slots free within it (e.g. 15s; at least 1s)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 15s", v)
		}
		c.LeaseTTL = d
		return nil
	}},
}

// EnvName returns the environment variable of a flag: VOICEGATE_ + the
// flag name in upper snake case.
func EnvName(flagName string) string {
	return "VOICEGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags binds the configuration flags to a FlagSet; subcommands add their
// own flags to the same set.
type Flags struct {
	config string
	vals   map[string]*string
	fs     *flag.FlagSet
}

// Bind registers --config and every configuration flag on fs.
func Bind(fs *flag.FlagSet) *Flags {
	f := &Flags{vals: map[string]*string{}, fs: fs}
	fs.StringVar(&f.config, "config", "", "YAML configuration file (env VOICEGATE_CONFIG)")
	for _, s := range settings {
		v, usage := new(string), s.usage+" (env "+EnvName(s.name)+")"
		if boolSettings[s.name] {
			fs.Var(boolFlag{v}, s.name, usage)
		} else {
			fs.StringVar(v, s.name, "", usage)
		}
		f.vals[s.name] = v
	}
	return f
}

// boolFlag is a string flag that may be given alone, meaning "true"; the
// setting parses the value like any other.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(v string) error { *b.v = v; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }

// BindStore registers only --config and --store on fs: the flags of the
// commands that read the store (keys, sessions, usage, audit). The
// environment and the file still set everything else.
func BindStore(fs *flag.FlagSet) *Flags {
	f := &Flags{vals: map[string]*string{}, fs: fs}
	fs.StringVar(&f.config, "config", "", "YAML configuration file (env VOICEGATE_CONFIG)")
	for _, s := range settings {
		if s.name == "store" {
			f.vals[s.name] = fs.String(s.name, "", s.usage+" (env "+EnvName(s.name)+"; default sqlite:voicegate.db, as voicegate dev)")
		}
	}
	return f
}

// Load builds the configuration after fs.Parse: defaults ← YAML file ←
// environment ← flags set on the command line, then validates it. base, when
// non-nil, replaces the defaults (voicegate dev uses other defaults).
func (f *Flags) Load(getenv func(string) string, base *Config) (*Config, error) {
	c := base
	if c == nil {
		c = Default()
	}
	path := f.config
	if !f.isSet("config") {
		path = getenv("VOICEGATE_CONFIG")
	}
	if path != "" {
		if err := loadFile(c, path); err != nil {
			return nil, err
		}
	}
	if v := getenv("OPENAI_API_KEY"); v != "" {
		c.OpenAIAPIKey = Secret(v)
	}
	if v := getenv("VOICEGATE_OPENAI_API_KEY"); v != "" {
		c.OpenAIAPIKey = Secret(v)
	}
	for _, s := range settings {
		if v := getenv(EnvName(s.name)); v != "" {
			if err := s.set(c, v); err != nil {
				return nil, fmt.Errorf("config: %s: %w", EnvName(s.name), err)
			}
		}
	}
	for _, s := range settings {
		if f.isSet(s.name) {
			if err := s.set(c, *f.vals[s.name]); err != nil {
				return nil, fmt.Errorf("config: --%s: %w", s.name, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func (f *Flags) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			set = true
		}
	})
	return set
}

func loadFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	var tmp struct {
		Config          `yaml:",inline"`
		ShutdownTimeout string `yaml:"shutdown_timeout"`
		LeaseTTL        string `yaml:"lease_ttl"`
		AuditRetention  string `yaml:"audit_retention"`
	}
	tmp.Config = *c
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict()).Decode(&tmp); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if tmp.ShutdownTimeout != "" {
		d, err := time.ParseDuration(tmp.ShutdownTimeout)
		if err != nil {
			return fmt.Errorf("config: %s: shutdown_timeout: %q is not a duration like 10s", path, tmp.ShutdownTimeout)
		}
		tmp.Config.ShutdownTimeout = d
	}
	if tmp.LeaseTTL != "" {
		d, err := time.ParseDuration(tmp.LeaseTTL)
		if err != nil {
			return fmt.Errorf("config: %s: lease_ttl: %q is not a duration like 15s", path, tmp.LeaseTTL)
		}
		tmp.Config.LeaseTTL = d
	}
	if tmp.AuditRetention != "" {
		d, err := time.ParseDuration(tmp.AuditRetention)
		if err != nil || d < 0 {
			return fmt.Errorf("config: %s: audit_retention: %q is not a duration like 720h", path, tmp.AuditRetention)
		}
		tmp.Config.AuditRetention = d
	}
	*c = tmp.Config
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
