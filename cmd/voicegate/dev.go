package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/config"
)

// cmdDev runs the gateway with the built-in simulator as upstream and the
// demo page, on 127.0.0.1:8080. Its store is the CLI's default, and its
// admin key (and, with --tls, its certificate) are kept beside the store's
// database so a restart keeps them.
func cmdDev(ctx context.Context, e env, args []string) error {
	fs, flags := gatewayFlags(e, help{
		usage: "voicegate dev [--tls] [flags]",
		about: "Run the gateway, the built-in Realtime API simulator and the demo page in one process,\n" +
			"offline, with no OpenAI key. Defaults: --addr 127.0.0.1:8080 --store sqlite:voicegate.db\n" +
			"(the store every voicegate command reads by default) --upstream sim --log-format text.\n" +
			"The admin key is kept in " + devAdminKeyFile + " beside the database (0600) and printed at start;\n" +
			"--tls serves https/wss with a self-signed certificate kept beside it (" + devCertFile + ").",
		example: "voicegate dev --tls\n" +
			"NODE_EXTRA_CA_CERTS=$PWD/" + devCertFile + " node app.mjs",
	})
	useTLS := fs.Bool("tls", false, "serve https/wss with a self-signed certificate kept beside the store ("+devCertFile+", "+devKeyFile+")")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	base := config.Default()
	base.Addr = "127.0.0.1:8080"
	base.Upstream = "sim"
	base.LogFormat = "text"
	cfg, err := flags.Load(e.getenv, base)
	if err != nil {
		return err
	}
	dir, err := devStateDir(cfg.Store)
	if err != nil {
		return err
	}
	persistent := dir != ""
	if !persistent { // memory store: nothing outlives the process
		if dir, err = os.MkdirTemp("", "voicegate-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	keyNote := "admin key kept in " + filepath.Join(dir, devAdminKeyFile) + " (0600): the same on every start"
	switch {
	case cfg.AdminKey != "":
		keyNote = "admin key from --admin-key / VOICEGATE_ADMIN_KEY / --config"
	case persistent:
		k, err := devAdminKey(dir)
		if err != nil {
			return err
		}
		cfg.AdminKey = config.Secret(k)
	default:
		cfg.AdminKey = config.Secret("vgadmin_" + randomHex(24))
		keyNote = "admin key new on every start (memory store)"
	}
	var certFile string
	if *useTLS && cfg.TLSCert == "" {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		if cfg.TLSCert, cfg.TLSKey, err = devCert(dir, host, time.Now()); err != nil {
			return fmt.Errorf("dev --tls: %w", err)
		}
		certFile = cfg.TLSCert
	}
	log := newLogger(cfg, e.stderr)
	return gateway(ctx, e, cfg, log, func(url string) {
		// One write, so a reader sees the whole announcement at once.
		var b strings.Builder
		fmt.Fprintf(&b, "voicegate dev: %s  admin key: %s\n", url, cfg.AdminKey.Reveal())
		fmt.Fprintf(&b, "  %s\n", keyNote)
		printDevStore(&b, cfg.Store)
		if certFile != "" {
			fmt.Fprintf(&b, "  TLS: self-signed certificate %s; trust it with\n    NODE_EXTRA_CA_CERTS=%s node app.mjs\n    curl --cacert %s %s/healthz\n",
				certFile, certFile, certFile, url)
		}
		io.WriteString(e.stdout, b.String())
	}, devLogin(cfg.AdminKey))
}

// printDevStore tells how the CLI finds dev's store.
func printDevStore(w io.Writer, store string) {
	kind, loc, _ := config.ParseStore(store)
	isDefault := store == config.Default().Store
	switch kind {
	case "memory":
		fmt.Fprintf(w, "  store: memory (nothing persists; the CLI cannot read it: use the operator API)\n")
		return
	case "sqlite":
		if abs, err := filepath.Abs(loc); err == nil {
			store = "sqlite:" + abs
		}
	}
	if isDefault {
		fmt.Fprintf(w, "  store: %s, the default of every voicegate command run here\n", store)
	} else {
		fmt.Fprintf(w, "  store: %s\n", storeLabel(store))
	}
	fmt.Fprintf(w, "  CLI anywhere: export VOICEGATE_STORE=%s; voicegate keys create --name web; voicegate sessions list\n", storeLabel(store))
}
