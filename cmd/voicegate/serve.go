package main

import (
	"context"
	"errors"
	"fmt"
)

// cmdServe runs the gateway.
func cmdServe(ctx context.Context, e env, args []string) error {
	fs, flags := gatewayFlags(e, help{
		usage: "voicegate serve [flags]",
		about: "Run the gateway in front of the Realtime API. The server key comes from OPENAI_API_KEY;\n" +
			"every flag also reads VOICEGATE_<FLAG> and the --config file.",
		example: "OPENAI_API_KEY=sk-… voicegate serve --addr :8443 --tls-cert cert.pem --tls-key key.pem \\\n" +
			"  --admin-key \"$(openssl rand -hex 32)\" --store sqlite:/var/lib/voicegate/voicegate.db",
	})
	if err := fs.parse(args); err != nil {
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
	}, nil)
}
