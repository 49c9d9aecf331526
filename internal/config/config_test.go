package config

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Load(func(k string) string { return env[k] }, nil)
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Tiers["default"]
	if c.Store != "sqlite:voicegate.db" || c.Upstream != "https://api.openai.com/v1" || c.LogFormat != "json" {
		t.Fatalf("defaults %+v", c)
	}
	if d.TTLDefaultSeconds != 600 || d.TTLMaxSeconds != 7200 || d.MaxSessionSeconds != DefaultMaxSessionSeconds || d.Models[0] != "gpt-realtime" || d.IdleTimeoutSeconds != 0 || d.BudgetUSD != 0 {
		t.Fatalf("default tier %+v", d)
	}
	// The safe defaults the README's table states.
	p, err := d.Policy("default")
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxSessionSeconds != 1800 || p.Concurrency.PerUser != 2 || p.Rates.MintsPerUserPerMinute != 10 {
		t.Fatalf("default tier policy %+v", p)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vg.yaml")
	yml := `addr: 127.0.0.1:1
store: memory
log_format: text
upstream: http://file.example/v1
shutdown_timeout: 3s
tiers:
  pro:
    ttl_max_seconds: 900
    models: [gpt-realtime-mini]
    budget_usd: 2.5
prices:
  my-model: {text_in: 1, audio_out: 2}
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"VOICEGATE_CONFIG":   path,
		"VOICEGATE_ADDR":     "127.0.0.1:2",
		"VOICEGATE_UPSTREAM": "http://env.example/v1",
		"OPENAI_API_KEY":     "sk-test-secret",
	}
	c, err := load(t, []string{"--addr", "127.0.0.1:3", "--allowed-origins", "https://a.example, https://b.example"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:3" {
		t.Errorf("flag must win: addr %q", c.Addr)
	}
	if c.Upstream != "http://env.example/v1" {
		t.Errorf("env must beat file: upstream %q", c.Upstream)
	}
	if c.Store != "memory" || c.LogFormat != "text" || c.ShutdownTimeout != 3*time.Second {
		t.Errorf("file values lost: %+v", c)
	}
	if c.OpenAIAPIKey.Reveal() != "sk-test-secret" {
		t.Error("OPENAI_API_KEY not read")
	}
	pro := c.Tiers["pro"]
	if pro.TTLMaxSeconds != 900 || pro.TTLDefaultSeconds != 600 || pro.Models[0] != "gpt-realtime-mini" || pro.BudgetUSD != 2.5 {
		t.Errorf("pro tier %+v", pro)
	}
	if c.Prices["my-model"].AudioOut != 2 {
		t.Errorf("prices %+v", c.Prices)
	}
	if !c.OriginAllowed("https://b.example") || c.OriginAllowed("https://evil.example") || !c.OriginAllowed("") {
		t.Error("origin allow-list wrong")
	}
}

func TestValidationMessages(t *testing.T) {
	tests := []struct {
		args []string
		yaml string
		want string
	}{
		{args: []string{"--store", "postgres://x"}, want: "store:"},
		{args: []string{"--admin-key", "short"}, want: "admin_key: must be at least 32"},
		{args: []string{"--log-format", "xml"}, want: "log_format"},
		{args: []string{"--tls-cert", "a.pem"}, want: "tls_cert and tls_key"},
		{args: []string{"--upstream", "ftp://x"}, want: "upstream"},
		{args: []string{"--allowed-origins", "nope"}, want: "allowed_origins"},
		{args: []string{"--shutdown-timeout", "soon"}, want: "--shutdown-timeout"},
		{yaml: "tiers: {x: {ttl_max_seconds: 9000}}", want: "tiers.x.ttl_max_seconds"},
		{yaml: "bogus_key: 1", want: "bogus_key"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				p := filepath.Join(t.TempDir(), "c.yaml")
				os.WriteFile(p, []byte(tt.yaml), 0o600)
				args = append(args, "--config", p)
			}
			_, err := load(t, args, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	c := Default()
	c.AdminKey = Secret(strings.Repeat("k", 40))
	c.OpenAIAPIKey = "sk-very-secret"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "admin", c.AdminKey, "key", c.OpenAIAPIKey)
	out := buf.String() + fmt.Sprintf("%v %+v %#v", c.AdminKey, *c, *c)
	if strings.Contains(out, "kkkk") || strings.Contains(out, "very-secret") {
		t.Fatalf("leak: %s", out)
	}
}

func TestParseStore(t *testing.T) {
	for in, want := range map[string]string{"memory": "memory", "sqlite:/tmp/x.db": "sqlite", "redis://localhost:6379/0": "redis"} {
		k, _, err := ParseStore(in)
		if err != nil || k != want {
			t.Errorf("ParseStore(%q) = %q, %v", in, k, err)
		}
	}
}
