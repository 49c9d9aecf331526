package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/sim/simrtc"
)

// stringList is a repeatable string flag (also accepts comma-separated
// values).
type stringList []string

func (l *stringList) String() string { return fmt.Sprint(len(*l), " values") } // never print keys
func (l *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// simConfig is the parsed configuration of `voicegate sim`.
type simConfig struct {
	addr, tlsCert, tlsKey, pace string
	apiKeys                     stringList
	sessionMax                  time.Duration
	faults                      sim.Faults
}

func parseSimFlags(e env, args []string) (*simConfig, error) {
	c := &simConfig{}
	fs := flag.NewFlagSet("voicegate sim", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.Var(&c.apiKeys, "api-key", "accepted server key (repeatable; env comma-separated); none = accept any key")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serves https/wss")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&c.pace, "pace", "realtime", "output audio pacing: realtime|fast")
	fs.DurationVar(&c.sessionMax, "session-max", 60*time.Minute, "maximum session duration")
	fs.IntVar(&c.faults.RefuseHandshake, "fault-refuse-handshake", 0, "refuse every WebSocket handshake with this HTTP status (0 = off)")
	fs.IntVar(&c.faults.DropAfterEvents, "fault-drop-after-events", 0, "drop each connection after N server events (0 = off)")
	fs.BoolVar(&c.faults.DropMidResponse, "fault-drop-mid-response", false, "drop the connection after the first audio delta of each response")
	fs.DurationVar(&c.faults.EventDelay, "fault-event-delay", 0, "delay every server event")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: voicegate sim [flags]\n\nAn offline OpenAI Realtime API. Every flag also reads VOICEGATE_<FLAG> (e.g. VOICEGATE_ADDR).")
		fs.PrintDefaults()
		fmt.Fprintln(e.stderr, "\nExample:\n  voicegate sim --addr 127.0.0.1:8090 --pace fast\n  voicegate serve --upstream http://127.0.0.1:8090/v1   # OPENAI_API_KEY=anything")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("sim: unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "VOICEGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := e.getenv(name); v != "" && !set[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("sim: %s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if c.pace != "realtime" && c.pace != "fast" {
		return nil, fmt.Errorf("sim: --pace must be realtime or fast, not %q", c.pace)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("sim: --tls-cert and --tls-key go together")
	}
	if c.sessionMax <= 0 {
		return nil, errors.New("sim: --session-max must be positive")
	}
	return c, nil
}

// cmdSim runs the upstream Realtime API simulator alone.
func cmdSim(ctx context.Context, e env, args []string) error {
	c, err := parseSimFlags(e, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	pace := sim.PaceRealtime
	if c.pace == "fast" {
		pace = sim.PaceFast
	}
	srv := sim.New(sim.Options{APIKeys: c.apiKeys, Pace: pace, SessionMax: c.sessionMax, Logger: log, Faults: c.faults})
	srv.Calls = simrtc.New(srv)
	defer srv.Close()

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("sim: listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(e.stdout, "voicegate sim: %s://%s/v1 (keys: %d, pace: %s)\n", scheme, ln.Addr(), len(c.apiKeys), c.pace)
	errc := make(chan error, 1)
	go func() {
		if c.tlsCert != "" {
			errc <- hs.ServeTLS(ln, c.tlsCert, c.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	_ = srv.Close() // hijacked WebSockets are not seen by Shutdown
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	<-errc
	return nil
}
