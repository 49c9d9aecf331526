package redis

import (
	"context"
	"fmt"
	"log/slog"
)

// ClientLogger adapts l to go-redis's logger, which go-redis keeps
// process-wide: main installs it once, with
//
//	goredis.SetLogger(redis.ClientLogger(l))
//
// so the client's own messages (failed dials, dropped pub/sub messages)
// reach the structured log instead of raw stderr lines. go-redis never puts
// the password in these messages.
func ClientLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return clientLogger{l}
}

type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.l.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
