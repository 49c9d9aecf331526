package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLeaseTTL(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vg.yaml")
	if err := os.WriteFile(file, []byte("store: memory\nlease_ttl: 4s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, nil, DefaultLeaseTTL},
		{"yaml", nil, map[string]string{"VOICEGATE_CONFIG": file}, 4 * time.Second},
		{"env beats yaml", nil, map[string]string{"VOICEGATE_CONFIG": file, "VOICEGATE_LEASE_TTL": "3s"}, 3 * time.Second},
		{"flag beats env", []string{"--lease-ttl", "2500ms"}, map[string]string{"VOICEGATE_LEASE_TTL": "3s"}, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.LeaseTTL != tt.want {
				t.Errorf("LeaseTTL = %v, want %v", c.LeaseTTL, tt.want)
			}
		})
	}
	for _, bad := range []struct{ arg, want string }{
		{"500ms", "lease_ttl: 500ms is shorter than 1s"},
		{"-1s", "lease_ttl"},
		{"soon", `--lease-ttl: "soon" is not a duration`},
	} {
		_, err := load(t, []string{"--lease-ttl", bad.arg}, nil)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--lease-ttl %s: err = %v, want it to mention %q", bad.arg, err, bad.want)
		}
	}
}
