// Package server is voicegate's HTTP surface: minting, the WebSocket entry
// of the relay, the operator API, health and metrics. NewServer wires the
// handlers listed in routes.go; each handler is a function that closes over
// the dependencies it needs.
package server

import (
	"context"
	"crypto/rand"
	"github.com/voicegate/voicegate/internal/calls"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/store"
)

// Relay is the live-session engine the server hands authenticated
// WebSocket requests to. cmd/voicegate adapts *relay.Relay to it; tests may
// use a small fake.
type Relay interface {
	// ServeSession upgrades and relays one authenticated session; it
	// returns when the session is over.
	ServeSession(w http.ResponseWriter, r *http.Request, s *store.Session, beta bool, query url.Values, safetyID string)
	// CloseSessions closes every live session on this instance that match
	// selects, and reports how many.
	CloseSessions(match func(*store.Session) bool, code websocket.StatusCode, reason, message string) int
	// IsLive reports whether the session has a live connection here.
	IsLive(sessionID string) bool
	// Shutdown closes every live session with 1001, bounded by ctx.
	Shutdown(ctx context.Context) error
}

// Deps are the server's dependencies. Zero values of the optional fields
// mean sensible defaults.
type Deps struct {
	Config *config.Config // required
	Store  store.Store    // required
	Auth   *auth.Authenticator
	Relay  Relay // nil: GET /v1/realtime answers 503
	// Calls places and governs WebRTC calls; nil: POST /v1/realtime/calls
	// answers 503.
	Calls  *calls.Calls
	Logger *slog.Logger
	// Registry receives the server's metrics and is served at /metrics;
	// nil creates a private one.
	Registry *prometheus.Registry
	Now      func() time.Time // nil = time.Now
	Rand     io.Reader        // nil = crypto/rand
	Instance string           // instance id for leases and audit
	// Web is served at / (the demo page); nil serves a short text note.
	Web fs.FS
	// LeaseTTL bounds how long a crashed instance holds a token's
	// connection slot; the lease is renewed every LeaseTTL/3. 0 = 15s.
	LeaseTTL time.Duration
	// Govern admits mints and connections (rate limits, concurrency caps,
	// the one-live-connection lease) and resolves tiers; nil builds one
	// on Store from the configured tiers.
	Govern *govern.Governor
}

// Server is the gateway's HTTP handler. It also owns the revocation
// subscriber (WatchRevocations) that closes revoked live sessions.
type Server struct {
	Deps
	metrics  *metrics
	h        http.Handler
	throttle failThrottle // failed authentications per source and credential
}

// NewServer builds the gateway's HTTP handler.
func NewServer(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Auth == nil {
		d.Auth = &auth.Authenticator{AdminKey: d.Config.AdminKey, Keys: d.Store}
	}
	if d.LeaseTTL == 0 {
		d.LeaseTTL = 15 * time.Second
	}
	if d.Govern == nil {
		tiers, err := d.Config.PolicyTiers()
		if err != nil {
			// config.Validate refuses such tiers; an unvalidated config
			// gets the tiers that map.
			d.Logger.Error("configured tiers do not map to policies", "err", err)
		}
		d.Govern = &govern.Governor{Store: d.Store, Tiers: tiers, Logger: d.Logger, Instance: d.Instance, LeaseTTL: d.LeaseTTL, Now: d.Now}
	}
	s := &Server{Deps: d, metrics: newMetrics(d.Registry)}
	s.h = s.handler()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }
