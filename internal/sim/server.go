package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Pace selects how fast response audio is emitted.
type Pace int

const (
	// PaceRealtime emits output audio at the rate it would be played.
	PaceRealtime Pace = iota
	// PaceFast emits every event as fast as possible, in the same order.
	PaceFast
)

// Options configures a Server. The zero value is a usable simulator.
type Options struct {
	// APIKeys are the accepted server keys; empty accepts any non-empty key
	// that is not an unknown ek_ key.
	APIKeys []string
	// Pace is the output pacing; the zero value is real time.
	Pace Pace
	// SessionMax is the maximum session duration; 0 means 60 minutes.
	SessionMax time.Duration
	// Now is the clock for key expiry and timestamps; nil means time.Now.
	Now func() time.Time
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Faults injects failures for reliability tests; zero means none.
	Faults Faults
	// Probe, when non-nil, timestamps appends and audio deltas for
	// latency benchmarks (cmd/vgbench); nil changes nothing.
	Probe *Probe
}

// Faults are failure knobs. The zero value injects nothing.
type Faults struct {
	// RefuseHandshake is the HTTP status every WebSocket handshake is
	// refused with (0 = off).
	RefuseHandshake int
	// DropAfterEvents closes the socket abruptly after N server events
	// (0 = off).
	DropAfterEvents int
	// DropMidResponse closes the socket abruptly after the first audio
	// delta of each response.
	DropMidResponse bool
	// EventDelay delays every server event.
	EventDelay time.Duration
}

// ErrCallNotFound is returned by Hangup for an unknown call id.
var ErrCallNotFound = errors.New("call not found")

// errBadKey is returned by Authorize for a missing, unknown or expired key.
var errBadKey = errors.New("incorrect api key")

// KeyInfo describes an authorized key.
type KeyInfo struct {
	// Ephemeral is true for ek_ keys minted by this simulator.
	Ephemeral bool
	// Session is the GA session config bound to an ek_ key (nil for
	// server keys).
	Session json.RawMessage
}

// CallOptions configures a call started by StartCall.
type CallOptions struct {
	// Session is the GA session config from the ek_ key or from the
	// multipart "session" part; nil for defaults.
	Session json.RawMessage
}

// Server is the simulated upstream Realtime API. Create it with New.
type Server struct {
	// Calls, when non-nil, serves POST /v1/realtime/calls (WebRTC). When
	// nil that route answers 501 with an OpenAI error envelope.
	Calls http.Handler

	opts   Options
	log    *slog.Logger
	now    func() time.Time
	audio  *audioBank
	keys   map[string]struct{}
	ledger *ledger

	// stepLate, when set before the first session (benchmarks), receives
	// how late each real-time paced step is emitted.
	stepLate func(late time.Duration)

	mu       sync.Mutex
	ephemera map[string]ephemeralKey       // ek_ value → binding
	calls    map[string]*session           // call id → session
	live     map[uint64]context.CancelFunc // live WebSocket connections
	nextLive uint64
	closed   bool
}

type ephemeralKey struct {
	expires time.Time
	session json.RawMessage
}

// New returns a simulator configured by opts.
func New(opts Options) *Server {
	if opts.SessionMax <= 0 {
		opts.SessionMax = 60 * time.Minute
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		audio:    sharedAudio(),
		keys:     map[string]struct{}{},
		ledger:   &ledger{},
		ephemera: map[string]ephemeralKey{},
		calls:    map[string]*session{},
		live:     map[uint64]context.CancelFunc{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, k := range opts.APIKeys {
		if k != "" {
			s.keys[k] = struct{}{}
		}
	}
	return s
}

// Handler returns the simulator's HTTP surface:
//
//	GET    /v1/realtime                          WebSocket sessions (model, intent, call_id)
//	POST   /v1/realtime/client_secrets           GA ephemeral keys
//	POST   /v1/realtime/sessions                 beta ephemeral keys
//	POST   /v1/realtime/calls                    WebRTC (Calls)
//	POST   /v1/realtime/calls/{call_id}/hangup   end a call
//	GET    /_sim/ledger, DELETE /_sim/ledger     every response.done's usage
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/realtime", s.serveWebSocket)
	mux.HandleFunc("POST /v1/realtime/client_secrets", s.serveClientSecrets)
	mux.HandleFunc("POST /v1/realtime/sessions", s.serveBetaSessions)
	mux.HandleFunc("POST /v1/realtime/calls", s.serveCalls)
	mux.HandleFunc("POST /v1/realtime/calls/{call_id}/hangup", s.serveHangup)
	mux.HandleFunc("GET /_sim/ledger", s.serveLedger)
	mux.HandleFunc("DELETE /_sim/ledger", s.serveLedgerClear)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "invalid_request_error", "not_found", "Invalid URL ("+r.Method+" "+r.URL.Path+")")
	})
	return mux
}

// Ledger returns every response.done emitted so far, oldest first.
func (s *Server) Ledger() []LedgerEntry { return s.ledger.entries() }

// Authorize checks an Authorization header value ("Bearer …"). Server keys
// give a KeyInfo with Ephemeral false; ek_ keys minted here and not expired
// give Ephemeral true and their bound session config.
func (s *Server) Authorize(authorization string) (KeyInfo, error) {
	const prefix = "Bearer "
	if len(authorization) <= len(prefix) || !equalFoldASCII(authorization[:len(prefix)], prefix) {
		return KeyInfo{}, errBadKey
	}
	return s.authorizeKey(authorization[len(prefix):])
}

func (s *Server) authorizeKey(key string) (KeyInfo, error) {
	if key == "" {
		return KeyInfo{}, errBadKey
	}
	if len(key) > 3 && key[:3] == "ek_" {
		s.mu.Lock()
		ek, ok := s.ephemera[key]
		s.mu.Unlock()
		if !ok || !s.now().Before(ek.expires) {
			return KeyInfo{}, errBadKey
		}
		return KeyInfo{Ephemeral: true, Session: ek.session}, nil
	}
	if len(s.keys) == 0 {
		return KeyInfo{}, nil
	}
	if _, ok := s.keys[key]; ok {
		return KeyInfo{}, nil
	}
	return KeyInfo{}, errBadKey
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i]|0x20, b[i]|0x20
		if ca != cb {
			return false
		}
	}
	return true
}

// StartCall starts a session on t and registers it as a call. It does not
// block: the session emits session.created through t and runs until t
// fails, Hangup is called or the session expires.
func (s *Server) StartCall(ctx context.Context, t AudioTransport, opts CallOptions) (string, error) {
	id := newCallID()
	sess, err := s.newSession(sessionParams{model: "", bound: opts.Session, callID: id})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.calls[id] = sess
	s.mu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", errors.New("simulator closed")
	}
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.calls, id)
			s.mu.Unlock()
		}()
		sess.run(context.WithoutCancel(ctx), t)
	}()
	return id, nil
}

// Hangup ends a call started by StartCall.
func (s *Server) Hangup(callID string) error {
	s.mu.Lock()
	sess, ok := s.calls[callID]
	s.mu.Unlock()
	if !ok {
		return ErrCallNotFound
	}
	sess.stop()
	return nil
}

// Close ends every live WebSocket session and call (http.Server.Shutdown
// does not see hijacked connections) and refuses new ones.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	live := make([]context.CancelFunc, 0, len(s.live))
	for _, f := range s.live {
		live = append(live, f)
	}
	calls := make([]*session, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, f := range live {
		f()
	}
	for _, c := range calls {
		c.stop()
	}
	return nil
}

func (s *Server) track(stop context.CancelFunc) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, false
	}
	s.nextLive++
	s.live[s.nextLive] = stop
	return s.nextLive, true
}

func (s *Server) untrack(id uint64) {
	s.mu.Lock()
	delete(s.live, id)
	s.mu.Unlock()
}

func (s *Server) call(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

func (s *Server) serveCalls(w http.ResponseWriter, r *http.Request) {
	if s.Calls == nil {
		writeAPIError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "WebRTC calls are not available in this simulator build.")
		return
	}
	s.Calls.ServeHTTP(w, r)
}

func (s *Server) serveHangup(w http.ResponseWriter, r *http.Request) {
	info, err := s.Authorize(r.Header.Get("Authorization"))
	if err != nil || info.Ephemeral {
		writeBadKey(w)
		return
	}
	if err := s.Hangup(r.PathValue("call_id")); err != nil {
		writeAPIError(w, http.StatusNotFound, "invalid_request_error", "call_id_not_found", "No session found for the provided call_id")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// keyHint is what may be shown of a key: its prefix and last 4 characters.
func keyHint(key string) string {
	if len(key) < 12 {
		return "****"
	}
	return key[:3] + "****" + key[len(key)-4:]
}

func newCallID() string {
	return "rtc_" + randHex(16)
}

// LogValue keeps the accepted keys out of logs: only their count shows.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("api_keys", len(o.APIKeys)),
		slog.Int("pace", int(o.Pace)),
		slog.Duration("session_max", o.SessionMax),
		slog.Any("faults", o.Faults),
	)
}
