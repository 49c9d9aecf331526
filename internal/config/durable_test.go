package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDurable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vg.yaml")
	if err := os.WriteFile(file, []byte("store: memory\ndurable: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, false},
		{"yaml", nil, map[string]string{"VOICEGATE_CONFIG": file}, true},
		{"env", nil, map[string]string{"VOICEGATE_DURABLE": "true"}, true},
		{"flag alone", []string{"--durable"}, nil, true},
		{"flag false over yaml", []string{"--durable=false"}, map[string]string{"VOICEGATE_CONFIG": file}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Durable != tt.want {
				t.Errorf("Durable = %v, want %v", c.Durable, tt.want)
			}
		})
	}
	if _, err := load(t, nil, map[string]string{"VOICEGATE_DURABLE": "sometimes"}); err == nil {
		t.Error("VOICEGATE_DURABLE=sometimes was accepted")
	}
}
