package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAuditRetention(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vg.yaml")
	if err := os.WriteFile(file, []byte("store: memory\naudit_retention: 48h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, nil, DefaultAuditRetention},
		{"yaml", nil, map[string]string{"VOICEGATE_CONFIG": file}, 48 * time.Hour},
		{"env", nil, map[string]string{"VOICEGATE_AUDIT_RETENTION": "24h"}, 24 * time.Hour},
		{"flag: keep all", []string{"--audit-retention", "0"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.AuditRetention != tt.want {
				t.Errorf("AuditRetention = %v, want %v", c.AuditRetention, tt.want)
			}
		})
	}
	if _, err := load(t, []string{"--audit-retention", "-1h"}, nil); err == nil {
		t.Error("a negative audit retention was accepted")
	}
}
