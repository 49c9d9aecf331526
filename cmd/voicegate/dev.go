package main

import (
	"context"
	"fmt"

	"github.com/voicegate/voicegate/internal/config"
)

// cmdDev runs the gateway with the built-in simulator as upstream and the
// demo page, on 127.0.0.1:8080, with an admin key printed once.
func cmdDev(ctx context.Context, e env, args []string) error {
	fs, flags := newFlags(e, "dev")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	base := config.Default()
	base.Addr = "127.0.0.1:8080"
	base.Store = "sqlite:voicegate-dev.db"
	base.Upstream = "sim"
	base.LogFormat = "text"
	cfg, err := flags.Load(e.getenv, base)
	if err != nil {
		return err
	}
	if cfg.AdminKey == "" {
		cfg.AdminKey = config.Secret("vgadmin_" + randomHex(24))
	}
	log := newLogger(cfg, e.stderr)
	return gateway(ctx, e, cfg, log, func(url string) {
		fmt.Fprintf(e.stdout, "voicegate dev: %s  admin key: %s\n", url, cfg.AdminKey.Reveal())
	})
}
