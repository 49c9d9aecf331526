package redis

import (
	"log/slog"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial to stderr; the tests that stop Redis
	// on purpose would drown the output.
	goredis.SetLogger(ClientLogger(slog.New(slog.DiscardHandler)))
	os.Exit(m.Run())
}
