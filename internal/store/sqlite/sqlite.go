// Package sqlite is the embedded store.Store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver.
//
// Several processes may open the same file (the CLI's `sessions revoke`
// while `serve` runs). Everything that must be atomic across handles and
// processes — session updates, rate limits, leases, budgets — runs in
// BEGIN IMMEDIATE transactions, which take SQLite's write lock up front, so
// two read-modify-write sequences never interleave; busy_timeout makes a
// second writer wait for the lock instead of failing.
//
// Group commit: every write of a Store (write.go) is queued for one writer
// goroutine, which takes every write queued at that moment (at most 256,
// WithMaxBatch), runs them one after another in one BEGIN IMMEDIATE
// transaction, each inside its own SAVEPOINT, commits once and only then
// answers each caller. A write that fails is rolled back to its savepoint
// and gets its error; the others of the batch still commit. So each write
// keeps its own semantics — serial, seeing the writes before it, atomic —
// while a batch costs one commit: one fsync in durable mode
// (WithDurable: synchronous=FULL, a commit returns after fsync). A write
// whose ctx ends before it runs is skipped with the ctx error (once it
// runs, its statements are not interrupted: that could roll back the whole
// transaction); a failed BEGIN or COMMIT fails every write of the batch
// with store.ErrUnavailable (a write that failed on its own keeps its
// error). A write must not call the Store: the writer would wait for itself.
// The default, synchronous=NORMAL, fsyncs the WAL only at checkpoints: a
// power loss may lose the last commits but never corrupts the file. Reads
// do not queue: they use the connection pool beside the writer.
//
// The revocation bus is the revocations table: PublishRevocation inserts a
// row, and each subscriber polls for rows after the last id it saw (every
// 100 ms by default, see WithPollInterval), so revocations reach every
// process on the file within one poll interval. Rows are pruned after an
// hour (WithRevocationRetention).
//
// A background loop (hourly, WithPruneInterval) deletes sessions, user
// revocations and budget accounts that have outlived the retention (30
// days, WithRetention; the Redis backend's TTLs match). The ledger and the
// audit trail are never pruned: they are the record of what was spent.
//
// Times are stored as Unix nanoseconds (0 for the zero time); the session
// config, limits, app-key tiers and audit details as JSON text. Tokens and
// keys appear only as the hashes the records carry.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" driver
)

// Defaults of the options.
const (
	DefaultBusyTimeout         = 5 * time.Second
	DefaultPollInterval        = 100 * time.Millisecond
	DefaultReservationTTL      = 15 * time.Minute
	DefaultRevocationRetention = time.Hour
	defaultSessionLimit        = 100
	defaultAuditLimit          = 1000
)

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use; open one per process and share it.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time

	busyTimeout         time.Duration
	pollInterval        time.Duration
	reservationTTL      time.Duration
	revocationRetention time.Duration
	retention           time.Duration
	auditRetention      time.Duration
	pruneInterval       time.Duration

	cache stmtCache     // every query's prepared statement (hotQueries at Open)
	ops   atomic.Uint64 // Allow and AcquireLease calls, to pace gc

	durable  bool // synchronous=FULL
	maxBatch int  // writes grouped into one transaction at most

	// The writer (write.go): every write is queued for one goroutine that
	// commits the queued writes together.
	queue        chan *writeOp
	queueMu      sync.RWMutex // orders enqueues against closing the queue
	queueClosed  bool
	writerDone   chan struct{}
	commits      atomic.Uint64 // transactions the writer committed
	committedOps atomic.Uint64 // writes those transactions held

	done      chan struct{} // closed by Close: subscriptions end
	closeOnce sync.Once
	subMu     sync.Mutex     // orders subs.Add against Close
	subs      sync.WaitGroup // subscription goroutines
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*Store)

// WithNow sets the clock used for rate limits, leases, budget holds and
// revocation pruning (default time.Now). Every process on one file should
// share a clock; the local clock of one machine does.
func WithNow(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithBusyTimeout sets how long a writer waits for another's lock before
// failing with store.ErrUnavailable (default 5 s).
func WithBusyTimeout(d time.Duration) Option { return func(s *Store) { s.busyTimeout = d } }

// WithPollInterval sets how often a revocation subscriber looks for new rows
// (default 100 ms): the worst-case delivery delay across processes.
func WithPollInterval(d time.Duration) Option { return func(s *Store) { s.pollInterval = d } }

// WithReservationTTL sets how long a budget hold lives unsettled before it
// is released on its own, so the holds of a crashed process expire (default
// 15 min).
func WithReservationTTL(d time.Duration) Option { return func(s *Store) { s.reservationTTL = d } }

// WithRevocationRetention sets how long published revocations stay in the
// table (default 1 h). It must exceed any subscriber's poll interval by far.
func WithRevocationRetention(d time.Duration) Option {
	return func(s *Store) { s.revocationRetention = d }
}

// Open opens (creating if needed) the database file at path, applies the
// pending schema migrations and prepares the hot statements.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || strings.Contains(path, ":memory:") {
		return nil, fmt.Errorf("sqlite: invalid database path %q: need a file path", path)
	}
	s := &Store{
		path:                path,
		now:                 time.Now,
		busyTimeout:         DefaultBusyTimeout,
		pollInterval:        DefaultPollInterval,
		reservationTTL:      DefaultReservationTTL,
		revocationRetention: DefaultRevocationRetention,
		retention:           DefaultRetention,
		auditRetention:      DefaultAuditRetention,
		pruneInterval:       DefaultPruneInterval,
		maxBatch:            DefaultMaxBatch,
		done:                make(chan struct{}),
		queue:               make(chan *writeOp, queueLen),
		writerDone:          make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(s.busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	if s.durable {
		q.Set("_synchronous", "FULL")
	}
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	// A plain path (no "file:" prefix): the driver strips the query and opens
	// the rest as a file name.
	dsn := path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Writers serialise on the file lock anyway; a few connections let
	// readers and polling subscribers proceed beside a writer.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	s.db = db
	go s.writeLoop() // owner: the store; ends at Close (or a failed Open)
	if err := s.migrateRetrying(ctx); err != nil {
		s.stopWriter()
		db.Close()
		return nil, err
	}
	for _, q := range hotQueries {
		if _, err := s.cache.prepare(ctx, db, q); err != nil {
			s.stopWriter()
			s.cache.close()
			db.Close()
			return nil, err
		}
	}
	if s.pruneInterval > 0 {
		s.subs.Add(1)
		go s.pruneLoop() // owner: the store; ends at Close
	}
	return s, nil
}

// migrateRetrying runs migrate, retrying while the file is busy for up to
// the busy timeout. SQLite's busy handler covers ordinary lock waits, but
// several processes opening a brand-new file at once race on the first
// switch to WAL journaling, and that path answers SQLITE_BUSY at once.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(s.busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := s.migrate(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var e *sqlitedrv.Error
	return errors.As(err, &e) && e.Code()&0xff == 5
}

// LogValue identifies the store in logs by its file path.
func (s *Store) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", "sqlite"), slog.String("path", s.path))
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close ends every subscription (closing their channels), waits for them,
// lets the writer commit and answer every write already queued (later
// writes fail with store.ErrUnavailable) and closes the database. Calling
// it again is a no-op.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.subMu.Lock()
		close(s.done)
		s.subMu.Unlock()
		s.subs.Wait()
		s.stopWriter()
		s.cache.close()
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("sqlite: close: %w", cerr)
		}
	})
	return err
}

// DB exposes the database for read-only reports and tests.
func (s *Store) DB() *sql.DB { return s.db }

// unavailable wraps a database failure so callers can fail closed; context
// errors and the store's own sentinel errors pass through.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
}

// nanos encodes t as Unix nanoseconds, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos decodes nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// where builds a WHERE clause of ANDed conditions, each with one argument.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, arg)
}

// text adds cond unless v is empty (an unset filter field).
func (w *where) text(cond, v string) {
	if v != "" {
		w.add(cond, v)
	}
}

// time adds cond with t in Unix nanoseconds unless t is zero.
func (w *where) time(cond string, t time.Time) {
	if !t.IsZero() {
		w.add(cond, nanos(t))
	}
}

// clause is " WHERE a AND b …", or "" without conditions.
func (w *where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// found maps a single-row read: no row is store.ErrNotFound naming what,
// any other failure store.ErrUnavailable for op.
func found[T any](v T, err error, op, what string) (T, error) {
	var zero T
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return zero, fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	case err != nil:
		return zero, unavailable(op, err)
	}
	return v, nil
}

// inserted maps an INSERT … ON CONFLICT DO NOTHING: no row written is
// store.ErrConflict naming what.
func inserted(res sql.Result, err error, op, what string) error {
	if err != nil {
		return unavailable(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return unavailable(op, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrConflict)
	}
	return nil
}

// corruptRow marks a row whose stored data cannot be decoded: queryAll
// returns it as it is rather than as the store being unavailable.
type corruptRow struct{ err error }

func (c corruptRow) Error() string { return c.err.Error() }
func (c corruptRow) Unwrap() error { return c.err }

// queryAll runs a query and scans every row with scan. Failures of the
// database are store.ErrUnavailable for op; a corruptRow from scan is
// returned as it is.
func queryAll[T any](ctx context.Context, db *sql.DB, op string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			var c corruptRow
			if errors.As(err, &c) {
				return nil, err
			}
			return nil, unavailable(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	return out, nil
}
