// Package relay is the live-session data path: one WebSocket from a client
// relayed to the upstream Realtime API with the server's key. It is an
// engine: the session's governor (internal/govern) decides on every event
// both ways, pins the session config and meters what upstream bills; the
// relay moves frames, keeps the session's timers (duration, idleness) and
// ends it as one table says (endings.go).
//
// A Relay is used like httputil.ReverseProxy: its exported fields are the
// extension points, each zero value a sensible default, and Serve reads top
// to bottom in the order a session flows.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	gws "github.com/gorilla/websocket"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/live"
	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the zero-valued fields of Relay.
const (
	DefaultAbandonWait = 5 * time.Second
	DefaultReadLimit   = 16 << 20
	dialTimeout        = 10 * time.Second
	pinTimeout         = 10 * time.Second
	clientWriteTimeout = 10 * time.Second
	// closingWriteTimeout bounds the final error event so revocation closes
	// a stalled client within a second.
	closingWriteTimeout = 500 * time.Millisecond
	closeWait           = 5 * time.Second
	// DefaultPingInterval and DefaultPingTimeout bound how long a vanished
	// client (or upstream) holds its session: it is found out within their
	// sum plus the ping loop's tick (a tenth of the shorter), 26 s, and its
	// slots are released after at most AbandonWait more.
	DefaultPingInterval = 15 * time.Second
	DefaultPingTimeout  = 10 * time.Second
)

// Relay relays live Realtime sessions to the upstream API. It is the
// engine only: every decision about a session (admission aside, which the
// HTTP layer asks of the same governor) is its Governor's.
type Relay struct {
	// Upstream is the API base URL, e.g. "https://api.openai.com/v1"; the
	// WebSocket URL is the same with scheme ws/wss and "/realtime" appended.
	Upstream string
	// APIKey is the server key sent upstream as a Bearer token.
	APIKey Secret
	// HTTPClient's transport, when it is an *http.Transport, lends the
	// upstream dial its dialer, proxy and TLS settings (custom roots in
	// tests); nil (or another RoundTripper) means http.DefaultTransport's.
	HTTPClient *http.Client
	// Governor governs every session (firewall, limits, budgets,
	// metering); its Store also receives session state and audit records.
	// Required.
	Governor *govern.Governor
	// Logger receives connect/disconnect lines; nil discards.
	Logger *slog.Logger
	// Metrics, when non-nil, is updated for every session and frame.
	Metrics *Metrics
	// Instance identifies this gateway instance in audit records.
	Instance string
	// Now is the clock of session records; nil means time.Now.
	Now func() time.Time
	// AbandonWait bounds the wait for the responses still outstanding
	// when the client went away or the session was closed (cancelled
	// upstream, then metered); 0 means 5 s.
	AbandonWait time.Duration
	// ReadLimit is the largest frame accepted from either side; 0 means
	// 16 MiB (appends up to 15 MiB are legal upstream).
	ReadLimit int64
	// PingInterval is how often both sides of a live session are pinged;
	// 0 means 15 s, negative disables pings.
	PingInterval time.Duration
	// PingTimeout is how long a ping may wait for its pong before that side
	// is taken as gone; 0 means 10 s.
	PingTimeout time.Duration

	onPong func(side string) // tests: called after each answered ping

	initOnce   sync.Once
	base       context.Context
	cancelBase context.CancelFunc

	live  live.Set[*session]
	pings pinger
}

// Conn is one authenticated client connection handed to Serve.
type Conn struct {
	// Session is the authenticated session; its state was checked by the
	// caller.
	Session *store.Session
	// Beta selects the beta interface upstream (OpenAI-Beta: realtime=v1,
	// from the header or the openai-beta.realtime-v1 subprotocol).
	Beta bool
	// Query is the client's query; only model and intent are forwarded
	// upstream (never call_id, which would make this connection the
	// sideband of someone's WebRTC call).
	Query url.Values
	// SafetyID is sent upstream as OpenAI-Safety-Identifier when non-empty.
	SafetyID string
}

func (r *Relay) init() {
	r.initOnce.Do(func() {
		r.base, r.cancelBase = context.WithCancel(context.Background())
	})
}

func (r *Relay) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Relay) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Relay) abandonWait() time.Duration {
	if r.AbandonWait > 0 {
		return r.AbandonWait
	}
	return DefaultAbandonWait
}

func (r *Relay) readLimit() int64 {
	if r.ReadLimit > 0 {
		return r.ReadLimit
	}
	return DefaultReadLimit
}

// Serve relays one client session. It dials upstream first (failure: HTTP
// 502 or 503 with the OpenAI error envelope, code upstream_unavailable, and
// no upgrade), then accepts the client WebSocket on w/req (answering the
// subprotocol "realtime" when offered, echoing no credential), applies the
// pinned config, relays both ways, meters every response.done, writes
// connect/disconnect audit records and session state, and returns when both
// sides are done. Origin and authentication checks are the caller's job.
func (r *Relay) Serve(w http.ResponseWriter, req *http.Request, c Conn) {
	r.init()
	log := r.logger().With("session_id", c.Session.ID, "token_id", c.Session.TokenID, "user", c.Session.User)
	if r.live.Shutting() {
		writeError(w, http.StatusServiceUnavailable, "upstream_unavailable", "the gateway is shutting down")
		return
	}

	// Dial upstream before upgrading, so a dead upstream is a plain HTTP
	// error the client's SDK can report.
	start := time.Now()
	upc, status, err := r.dial(req.Context(), c)
	if err != nil {
		r.Metrics.error("upstream_unavailable")
		log.Warn("upstream dial failed", "err", err, "upstream_status", status)
		code := http.StatusServiceUnavailable
		if status != 0 {
			code = http.StatusBadGateway
		}
		writeError(w, code, "upstream_unavailable", "the upstream Realtime API is unavailable")
		return
	}
	dialed := time.Since(start)
	r.Metrics.dialed(dialed.Seconds())
	up := newWSConn(upc, r.readLimit())

	// The origin was checked by the caller; only "realtime" is ever
	// selected, so the credential subprotocol is never echoed.
	cc, err := upgrader.Upgrade(w, req, nil)
	if err != nil { // the upgrader answered the client with an HTTP error
		r.Metrics.error("accept_failed")
		log.Info("client websocket accept failed", "err", err)
		up.closeWith(websocket.StatusGoingAway, "client handshake failed")
		up.closeNow()
		return
	}
	client := newWSConn(cc, r.readLimit())

	s := r.newSession(c, client, up, log)
	if !r.live.Add(s, s.rec) {
		client.closeWith(websocket.StatusGoingAway, "going_away")
		up.closeWith(websocket.StatusGoingAway, "")
		client.closeNow()
		up.closeNow()
		return
	}
	defer r.live.Remove(s)
	s.run(dialed)
}

// ServeSession is Serve for the HTTP layer (server.Relay).
func (r *Relay) ServeSession(w http.ResponseWriter, req *http.Request, s *store.Session, beta bool, q url.Values, safetyID string) {
	r.Serve(w, req, Conn{Session: s, Beta: beta, Query: q, SafetyID: safetyID})
}

// dial opens the upstream WebSocket; status is the upstream HTTP status
// when it answered the handshake with an error.
func (r *Relay) dial(ctx context.Context, c Conn) (*gws.Conn, int, error) {
	u, err := realtimeURL(r.Upstream, c.Query)
	if err != nil {
		return nil, 0, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+string(r.APIKey))
	if c.SafetyID != "" {
		h.Set("OpenAI-Safety-Identifier", c.SafetyID)
	}
	if c.Beta {
		h.Set("OpenAI-Beta", "realtime=v1")
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := r.dialer().DialContext(ctx, u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		// The error text of gorilla/websocket names neither the URL's
		// credentials nor headers: there are none in the URL.
		return nil, status, err
	}
	return conn, 0, nil
}

// upgrader accepts client connections: no origin check (the caller's job),
// write buffers lent from writePool, the hijacked read buffer reused.
var upgrader = gws.Upgrader{
	Subprotocols:    []string{"realtime"},
	CheckOrigin:     func(*http.Request) bool { return true },
	WriteBufferSize: writeBufferSize,
	WriteBufferPool: writePool,
	Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		writeError(w, status, "invalid_request_error", "websocket handshake failed: "+reason.Error())
	},
}

// dialer is the upstream dialer, taking the dial, TLS and proxy settings
// of HTTPClient's transport when it is an *http.Transport (the default
// transport's otherwise).
func (r *Relay) dialer() *gws.Dialer {
	t, _ := http.DefaultTransport.(*http.Transport)
	if r.HTTPClient != nil {
		if ht, ok := r.HTTPClient.Transport.(*http.Transport); ok {
			t = ht
		}
	}
	d := &gws.Dialer{
		HandshakeTimeout: dialTimeout,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  writePool,
	}
	if t != nil {
		d.NetDialContext = t.DialContext
		d.Proxy = t.Proxy
		d.TLSClientConfig = t.TLSClientConfig
	}
	return d
}

// forwardedParams are the only query parameters of a client that reach
// upstream, where the server key is sent with them.
var forwardedParams = []string{"model", "intent"}

// realtimeURL maps an API base URL to its Realtime WebSocket URL, with
// the forwarded parameters of q.
func realtimeURL(base string, q url.Values) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	case "http", "ws":
		u.Scheme = "ws"
	default:
		return "", errors.New("relay: upstream url must be http(s) or ws(s)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/realtime"
	fwd := url.Values{}
	for _, k := range forwardedParams {
		if v := q.Get(k); v != "" {
			fwd.Set(k, v)
		}
	}
	u.RawQuery = fwd.Encode()
	return u.String(), nil
}

// writeError writes the OpenAI error envelope.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"type": "voicegate_error", "code": code, "message": message, "param": nil,
	}})
}

// CloseSessions closes every live connection on this instance whose
// session matches: the client gets the error event {code: reason, message}
// and a close with code (1008 for policy) at once; an in-flight response is
// cancelled upstream and metered before the upstream side closes. It returns
// how many sessions it closed.
func (r *Relay) CloseSessions(match func(*store.Session) bool, code websocket.StatusCode, reason, message string) int {
	r.init()
	hit := r.live.Select(func(_ *session, rec *store.Session) bool { return match(rec) })
	for _, s := range hit {
		s.terminate(endCause{by: byGateway, code: code, reason: reason, message: message})
	}
	return len(hit)
}

// LiveCount reports the live sessions on this instance.
func (r *Relay) LiveCount() int { return r.live.Len() }

// IsLive reports whether session id has a live connection on this instance.
func (r *Relay) IsLive(sessionID string) bool { return r.live.Has(sessionID) }

// Shutdown refuses new sessions and drains the live ones: each is closed
// with 1001 "going_away" as soon as nothing it started upstream is
// outstanding, so answers being spoken finish and are metered. Sessions
// still busy when the drain ends (ctx's deadline less a second for the
// closes; no deadline: at once) are closed then, their responses cancelled
// upstream and metered. It waits for every session, bounded by ctx; when
// ctx ends first, the remaining connections are cut.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.init()
	sessions := r.live.Close()
	if dl, ok := ctx.Deadline(); ok {
		margin := min(time.Second, time.Until(dl)/2)
		drainCtx, cancel := context.WithDeadline(ctx, dl.Add(-margin))
		var drained sync.WaitGroup
		for _, s := range sessions {
			drained.Go(func() { s.drain(drainCtx) })
		}
		drained.Wait()
		cancel()
	}
	r.CloseSessions(func(*store.Session) bool { return true }, websocket.StatusGoingAway, "going_away", "the gateway is shutting down")
	done := r.live.Done()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		r.cancelBase()
		<-done
		return ctx.Err()
	}
}
