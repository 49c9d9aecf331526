package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/relay"
	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/sim/simrtc"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/store/redis"
	"github.com/voicegate/voicegate/internal/store/spool"
	"github.com/voicegate/voicegate/internal/store/sqlite"
	"github.com/voicegate/voicegate/web"
)

// gatewayFlags returns the flag set of serve and dev: every configuration
// flag.
func gatewayFlags(e env, h help) (*flagSet, *config.Flags) {
	fs := cmdFlags(e, h)
	return fs, config.Bind(fs.FlagSet)
}

// openStore opens the --store backend.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	kind, loc, err := config.ParseStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "memory":
		return memory.New(), nil
	case "sqlite":
		st, err := sqlite.Open(ctx, loc, sqlite.WithAuditRetention(cfg.AuditRetention), sqlite.WithDurable(cfg.Durable))
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", loc, err)
		}
		return st, nil
	default:
		st, err := redis.Open(ctx, loc, redis.WithLogger(log), redis.WithAuditRetention(cfg.AuditRetention))
		if err != nil {
			return nil, fmt.Errorf("open redis store: %w", err)
		}
		return st, nil
	}
}

// withSpool wraps a redis store in the durability spool (internal/store/spool)
// so metering writes made while Redis is unreachable are kept on disk and
// replayed; other backends are returned unchanged. On error st is closed.
func withSpool(cfg *config.Config, st store.Store, log *slog.Logger) (store.Store, error) {
	if kind, _, _ := config.ParseStore(cfg.Store); kind != "redis" {
		return st, nil
	}
	dir := cfg.SpoolDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "voicegate", "spool", cfg.Instance)
	}
	sp, err := spool.New(st, dir, spool.WithLogger(log))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	return sp, nil
}

// newLogger builds the process logger from --log-format and --log-level.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	lvl, _ := cfg.SlogLevel() // validated
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// priceTable is the built-in table with the configuration's overrides;
// config validation has checked it prices every model a tier allows.
func priceTable(cfg *config.Config) meter.Table { return cfg.PriceTable() }

func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "voicegate"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// gateway runs the whole gateway until ctx is done. announce is called
// with the base URL once the listener is open; wrap, when non-nil, wraps
// the gateway's handler (dev's own routes; serve passes nil).
func gateway(ctx context.Context, e env, cfg *config.Config, log *slog.Logger, announce func(baseURL string), wrap func(http.Handler) http.Handler) error {
	if cfg.Instance == "" {
		cfg.Instance = defaultInstance()
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	if st, err = withSpool(cfg, st, log); err != nil {
		return err
	}
	defer st.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	upstream, apiKey := cfg.Upstream, cfg.OpenAIAPIKey.Reveal()
	if upstream == "sim" {
		// The built-in simulator on its own loopback listener, with a
		// per-process key.
		apiKey = "sk-sim-" + randomHex(16)
		simSrv := sim.New(sim.Options{APIKeys: []string{apiKey}, Logger: log.With("component", "sim")})
		simSrv.Calls = simrtc.New(simSrv, simrtc.WithLogger(log.With("component", "sim")))
		sln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("simulator listener: %w", err)
		}
		upstream = "http://" + sln.Addr().String() + "/v1"
		wg.Add(1)
		go func() { // owner: gateway; exits when ctx is done
			defer wg.Done()
			if err := server.Serve(ctx, sln, simSrv.Handler(), server.ServeOptions{Logger: log, ShutdownTimeout: cfg.ShutdownTimeout}); err != nil {
				log.Error("simulator stopped", "err", err)
			}
		}()
		log.Info("built-in simulator started", "upstream", upstream)
	}

	endUsers, err := userLogin(cfg)
	if err != nil {
		return err
	}
	tiers, err := cfg.PolicyTiers()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	gov := &govern.Governor{
		Store: st, Tiers: tiers, Prices: priceTable(cfg), Metrics: govern.NewMetrics(reg),
		Logger: log.With("component", "governance"), Instance: cfg.Instance, LeaseTTL: cfg.LeaseTTL,
	}
	rl := &relay.Relay{
		Governor: gov,
		Upstream: upstream,
		APIKey:   relay.Secret(apiKey),
		Logger:   log.With("component", "relay"),
		Metrics:  relay.NewMetrics(reg),
		Instance: cfg.Instance,
	}
	cl := &calls.Calls{
		Governor: gov,
		Upstream: upstream,
		APIKey:   relay.Secret(apiKey),
		Logger:   log.With("component", "calls"),
		Metrics:  calls.NewMetrics(reg),
	}
	srv := server.NewServer(server.Deps{
		Calls:    cl,
		Config:   cfg,
		Store:    st,
		Auth:     &auth.Authenticator{AdminKey: cfg.AdminKey, Keys: st, Login: endUsers},
		Relay:    rl,
		Logger:   log,
		Registry: reg,
		Instance: cfg.Instance,
		LeaseTTL: cfg.LeaseTTL,
		Web:      web.FS(),
		Govern:   gov,
	})
	wg.Add(1)
	go func() { // owner: gateway; exits when ctx is done
		defer wg.Done()
		gov.RunRecovery(ctx)
	}()
	wg.Add(1)
	go func() { // owner: gateway; exits when ctx is done
		defer wg.Done()
		srv.WatchRevocations(ctx)
	}()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	log.Info("voicegate listening", "url", base, "store", storeLabel(cfg.Store), "upstream", upstream, "instance", cfg.Instance)
	if announce != nil {
		announce(base)
	}
	if cfg.DebugAddr != "" { // after the gateway's own URL, which tools read first
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	return server.Serve(ctx, ln, h, server.ServeOptions{
		TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, ShutdownTimeout: cfg.ShutdownTimeout, Logger: log, Relay: engines{rl, cl},
	})
}

// engines shuts the WebSocket relay and the WebRTC calls down together.
type engines struct {
	*relay.Relay
	calls *calls.Calls
}

func (e engines) Shutdown(ctx context.Context) error {
	return errors.Join(e.Relay.Shutdown(ctx), e.calls.Shutdown(ctx))
}

// storeLabel hides a Redis password in logs.
func storeLabel(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return s
}

// openConfigStore is the common start of the store-reading CLI commands.
func openConfigStore(ctx context.Context, e env, flags *config.Flags) (*config.Config, store.Store, error) {
	cfg, err := flags.Load(e.getenv, nil)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}
