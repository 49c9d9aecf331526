package redis

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestClientLoggerAndLogValue(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	ClientLogger(l).Printf(context.Background(), "dial %s: %v", "127.0.0.1:1", "refused")
	if !strings.Contains(buf.String(), `"detail":"dial 127.0.0.1:1: refused"`) {
		t.Fatalf("log line %s", buf.String())
	}

	buf.Reset()
	s := &Store{addr: "127.0.0.1:6379", k: keys{p: "vg:"}}
	l.Info("opened", "store", s)
	if got := buf.String(); !strings.Contains(got, `"addr":"127.0.0.1:6379"`) || strings.Contains(got, "password") {
		t.Fatalf("log line %s", got)
	}
}
