package simrtc

import (
	"io"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// Option configures the handler built by New.
type Option func(*config)

type config struct {
	logger         *slog.Logger
	settings       func(*webrtc.SettingEngine)
	gatherTimeout  time.Duration
	connectTimeout time.Duration
}

func newConfig(opts []Option) config {
	c := config{
		logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		gatherTimeout:  5 * time.Second,
		connectTimeout: 30 * time.Second,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithLogger sets the logger of the calls (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithSettingEngine lets configure adjust pion's SettingEngine after the
// defaults of LoopbackOnly, for example to offer candidates on every
// interface so that a browser on another machine can connect:
//
//	simrtc.WithSettingEngine(func(se *webrtc.SettingEngine) {
//		se.SetInterfaceFilter(nil)
//		se.SetIPFilter(nil)
//	})
func WithSettingEngine(configure func(*webrtc.SettingEngine)) Option {
	return func(c *config) { c.settings = configure }
}

// WithConnectTimeout sets how long a call waits for the peer to connect
// after the answer before it ends (default 30 s).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.connectTimeout = d
		}
	}
}
