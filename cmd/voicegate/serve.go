package main

import (
	"context"
	"errors"
	"fmt"
)

// cmdServe runs the gateway.
func cmdServe(ctx context.Context, e env, args []string) error {
	fs, flags := newFlags(e, "serve")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	cfg, err := flags.Load(e.getenv, nil)
	if err != nil {
		return err
	}
	if cfg.Upstream != "sim" && cfg.OpenAIAPIKey == "" {
		return errors.New("serve: OPENAI_API_KEY is not set (use --upstream sim to run against the built-in simulator)")
	}
	log := newLogger(cfg, e.stderr)
	if cfg.AdminKey == "" {
		log.Warn("no --admin-key: only app keys (voicegate keys create) can mint or use the operator API")
	}
	return gateway(ctx, e, cfg, log, func(base string) {
		fmt.Fprintf(e.stdout, "voicegate serve: %s\n", base)
	})
}
