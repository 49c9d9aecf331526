package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the options.
const (
	DefaultPrefix         = "vg:"
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultReservationTTL = 15 * time.Minute
	DefaultPingTimeout    = time.Second
)

// revocationKeep is how many revocations the capped log keeps for
// subscribers catching up after a reconnect.
const revocationKeep = 1000

// Store is the Redis implementation of store.Store. It is safe for
// concurrent use; open one per process and share it.
type Store struct {
	c    goredis.UniversalClient
	addr string // for logs; never holds the password
	k    keys
	log  *slog.Logger
	now  func() time.Time

	retention      time.Duration
	auditRetention time.Duration
	pruneInterval  time.Duration
	reservationTTL time.Duration
	pingTimeout    time.Duration
	revocationKeep int
	healthCheck    time.Duration
	// scriptClock, when set (tests only), replaces the Redis server's
	// clock in the rate-limit and lease scripts.
	scriptClock func() time.Time

	stop      context.CancelFunc // ends the background prune
	bg        sync.WaitGroup     // the background prune
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*Store)

// WithPrefix sets the prefix of every key and channel (default "vg:"), so
// several deployments can share one Redis.
func WithPrefix(p string) Option { return func(s *Store) { s.k.p = p } }

// WithRetention sets how long sessions, their indexes and user revocations
// are kept after they can no longer be used (default 30 days).
func WithRetention(d time.Duration) Option { return func(s *Store) { s.retention = d } }

// WithReservationTTL sets how long a budget hold lives unsettled before it
// is released on its own, so a dead instance's holds expire (default 15 min).
func WithReservationTTL(d time.Duration) Option { return func(s *Store) { s.reservationTTL = d } }

// WithPingTimeout bounds Ping (default 1 s), so readiness checks fail fast.
func WithPingTimeout(d time.Duration) Option { return func(s *Store) { s.pingTimeout = d } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithClock sets the clock used for retention and TTL arithmetic done in Go
// (default time.Now). Rate limits and leases always use the Redis server's
// clock so that every instance agrees.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithClient uses c instead of a client built from the URL, e.g. a
// *goredis.ClusterClient or a Sentinel failover client. The url argument of
// Open is then ignored. Close closes c.
func WithClient(c goredis.UniversalClient) Option { return func(s *Store) { s.c = c } }

// Open connects to the Redis at url ("redis://[:password@]host:port/db",
// "rediss://…" for TLS, or "redis+cluster://host:port?addr=host2:port2" for
// a Redis Cluster) and checks it answers. Errors never contain the URL, which
// may carry a password.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s := &Store{
		k:              keys{p: DefaultPrefix},
		now:            time.Now,
		retention:      DefaultRetention,
		auditRetention: DefaultAuditRetention,
		pruneInterval:  DefaultPruneInterval,
		reservationTTL: DefaultReservationTTL,
		pingTimeout:    DefaultPingTimeout,
		revocationKeep: revocationKeep,
		healthCheck:    3 * time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.c == nil {
		c, addr, err := newClient(url)
		if err != nil {
			return nil, err
		}
		s.c, s.addr = c, addr
	} else if s.addr == "" {
		s.addr = "(client given)"
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.c.Close()
		return nil, err
	}
	var bg context.Context
	bg, s.stop = context.WithCancel(context.Background())
	if s.auditRetention > 0 && s.pruneInterval > 0 {
		s.bg.Add(1)
		go s.pruneLoop(bg) // owner: the store; ends at Close
	}
	return s, nil
}

// newClient builds the client for url: "redis://" and "rediss://" for one
// server, "redis+cluster://host:port?addr=host2:port2" (or
// "rediss+cluster://") for a Redis Cluster. It returns the address for logs.
func newClient(url string) (goredis.UniversalClient, string, error) {
	// Fail fast: a gateway that cannot reach Redis must refuse new sessions
	// within a second, not after go-redis's 5 s dial timeout, five dial
	// attempts and three command retries. No command retries at all: a
	// script whose reply was lost may have run, and running Charge or
	// AppendAudit twice would count twice. The pool drops connections a
	// restarted Redis closed before reusing them; callers retry what is
	// idempotent. RESP2 keeps RESP3 push frames out of pub/sub.
	const (
		dialTimeout = time.Second
		ioTimeout   = 2 * time.Second
	)
	if rest, ok := strings.CutPrefix(url, "redis+cluster://"); ok {
		url = "redis://" + rest
	} else if rest, ok := strings.CutPrefix(url, "rediss+cluster://"); ok {
		url = "rediss://" + rest
	} else {
		o, err := goredis.ParseURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("redis: parse store url: %w", errors.New(redactURLError(err)))
		}
		o.DialTimeout, o.DialerRetries = dialTimeout, 1
		o.ReadTimeout, o.WriteTimeout = ioTimeout, ioTimeout
		o.MaxRetries = -1
		o.Protocol, o.DisableIdentity = 2, true
		return goredis.NewClient(o), o.Addr, nil
	}
	o, err := goredis.ParseClusterURL(url)
	if err != nil {
		return nil, "", fmt.Errorf("redis: parse store url: %w", errors.New(redactURLError(err)))
	}
	o.DialTimeout, o.DialerRetries = dialTimeout, 1
	o.ReadTimeout, o.WriteTimeout = ioTimeout, ioTimeout
	o.MaxRetries = -1
	o.Protocol, o.DisableIdentity = 2, true
	return goredis.NewClusterClient(o), strings.Join(o.Addrs, ","), nil
}

// redactURLError keeps only the part of a parse error that cannot hold the
// password.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		return "invalid url"
	}
	return msg
}

// LogValue names the backend and its address, never its credentials.
func (s *Store) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", "redis"), slog.String("addr", s.addr), slog.String("prefix", s.k.p))
}

// Ping reports whether Redis answers within the ping timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.pingTimeout)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close stops the background prune, waits for it and closes the client.
// Subscriptions end with their contexts. Calling it again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.bg.Wait()
		s.closeErr = s.c.Close()
	})
	return s.closeErr
}

// unavailable wraps a Redis failure so callers can fail closed with
// errors.Is(err, store.ErrUnavailable), keeping the cause for logs.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return err
	}
	return fmt.Errorf("%w: redis %s: %w", store.ErrUnavailable, op, err)
}

// clockArgs returns the script argument that replaces the server's clock,
// or nothing in production.
func (s *Store) clockArgs(args ...any) []any {
	if s.scriptClock != nil {
		return append(args, s.scriptClock().UnixMicro())
	}
	return args
}

// usec converts a time to Unix microseconds, the unit of every sorted-set
// score holding a time (exact in a float64 until the year 2255).
func usec(t time.Time) float64 { return float64(t.UnixMicro()) }

// ttlUntil returns the duration from now until t plus the retention,
// never less than a minute, for PEXPIRE of records that outlive their use.
func (s *Store) ttlUntil(t time.Time) time.Duration {
	d := t.Sub(s.now()) + s.retention
	if d < time.Minute {
		d = time.Minute
	}
	return d
}
