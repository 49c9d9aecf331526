package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Option configures a Spool.
type Option func(*Spool)

// WithInterval sets how often the replayer pings the backend while the spool
// is non-empty (default 1s).
func WithInterval(d time.Duration) Option {
	return func(s *Spool) {
		if d > 0 {
			s.interval = d
		}
	}
}

// WithLogger sets the logger for replay progress and dropped operations.
func WithLogger(l *slog.Logger) Option {
	return func(s *Spool) {
		if l != nil {
			s.log = l
		}
	}
}

// WithOpTimeout bounds each backend call made by the replayer (default 5s).
func WithOpTimeout(d time.Duration) Option {
	return func(s *Spool) {
		if d > 0 {
			s.opTimeout = d
		}
	}
}

// Spool is a store.Store that spools metering writes to disk while the inner
// store is unavailable and replays them when it is back. See the package doc.
type Spool struct {
	store.Store // pass-through for every method not overridden

	interval  time.Duration
	opTimeout time.Duration
	log       *slog.Logger

	mu      sync.Mutex // guards f and the fields below; held during replay
	f       *file
	pending []op
	applied int // ops of pending already applied (recorded in the offset file)
	ledger  map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New wraps inner with a spool kept in dir (created 0700 if missing). Ops
// left in dir by a previous process are loaded and replayed. The replayer
// goroutine runs until Close.
func New(inner store.Store, dir string, opts ...Option) (*Spool, error) {
	s := &Spool{
		Store:     inner,
		interval:  time.Second,
		opTimeout: 5 * time.Second,
		log:       slog.New(slog.DiscardHandler),
		ledger:    map[string]bool{},
		done:      make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	f, ops, applied, err := openFile(dir)
	if err != nil {
		return nil, err
	}
	if applied >= len(ops) && applied > 0 || len(ops) == 0 {
		// Everything applied (or a stale offset left by a crash inside
		// reset): start from an empty spool so the offset never skips new ops.
		if err := f.reset(); err != nil {
			f.close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		ops, applied = nil, 0
	}
	s.f, s.pending, s.applied = f, ops, applied
	for i := applied; i < len(ops); i++ {
		if ops[i].Kind == kindRecordUsage {
			s.ledger[ledgerKey(ops[i].Entry)] = true
		}
	}
	if n := len(ops) - applied; n > 0 {
		s.log.Info("spool: loaded pending operations", "count", n, "dir", dir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// Pending reports how many operations wait in the spool.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) - s.applied
}

// Close stops the replayer, closes the spool file and then the inner store.
// Operations still spooled stay on disk for the next process.
func (s *Spool) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		ferr := s.f.close()
		s.mu.Unlock()
		err = errors.Join(ferr, s.Store.Close())
	})
	return err
}

// RecordUsage implements store.Ledger; see the package doc for the meaning
// of inserted when the entry is spooled.
func (s *Spool) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	o := op{Kind: kindRecordUsage, Entry: &e}
	if spooled, dup, err := s.spoolIfPending(o); spooled || err != nil {
		return !dup, err
	}
	ok, err := s.Store.RecordUsage(ctx, e)
	if !errors.Is(err, store.ErrUnavailable) {
		return ok, err
	}
	dup, err := s.appendOp(o)
	return !dup, err
}

// Charge implements store.Budgets, spooling on store.ErrUnavailable.
func (s *Spool) Charge(ctx context.Context, accounts []store.BudgetAccount, amount int64) error {
	return s.write(ctx, op{Kind: kindCharge, Accounts: accounts, Amount: amount}, func() error {
		return s.Store.Charge(ctx, accounts, amount)
	})
}

// Settle implements store.Budgets, spooling on store.ErrUnavailable.
func (s *Spool) Settle(ctx context.Context, id string, actual int64) error {
	return s.write(ctx, op{Kind: kindSettle, ID: id, Amount: actual}, func() error {
		return s.Store.Settle(ctx, id, actual)
	})
}

// SessionHolds implements store.Budgets. Like every read it goes to the
// backend and fails with store.ErrUnavailable while that is down; it leaves
// out the reservations whose Settle waits in the spool: they are settled,
// and a second Settle applied before the spooled one would make that one a
// no-op and lose its amount.
func (s *Spool) SessionHolds(ctx context.Context, session string) ([]store.Hold, error) {
	// Taken before the read: a spooled Settle replayed in between is then
	// either left out here or already gone from the backend.
	settling := s.spooledSettles()
	holds, err := s.Store.SessionHolds(ctx, session)
	if err != nil || len(settling) == 0 {
		return holds, err
	}
	return slices.DeleteFunc(holds, func(h store.Hold) bool { return settling[h.ID] }), nil
}

// spooledSettles returns the reservation ids of the Settle operations not
// yet replayed.
func (s *Spool) spooledSettles() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids map[string]bool
	for _, o := range s.pending[s.applied:] {
		if o.Kind != kindSettle {
			continue
		}
		if ids == nil {
			ids = make(map[string]bool)
		}
		ids[o.ID] = true
	}
	return ids
}

// AppendAudit implements store.Audit, spooling on store.ErrUnavailable.
func (s *Spool) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	e = e.Bounded() // the spool file is bounded like the backend
	return s.write(ctx, op{Kind: kindAudit, Audit: &e}, func() error {
		return s.Store.AppendAudit(ctx, e)
	})
}

func (s *Spool) write(_ context.Context, o op, call func() error) error {
	if spooled, _, err := s.spoolIfPending(o); spooled || err != nil {
		return err
	}
	err := call()
	if !errors.Is(err, store.ErrUnavailable) {
		return err
	}
	_, err = s.appendOp(o)
	return err
}

// spoolIfPending appends o when the spool already holds operations, so that
// o is applied after them.
func (s *Spool) spoolIfPending(o op) (spooled, dup bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == s.applied {
		return false, false, nil
	}
	dup, err = s.appendLocked(o)
	return true, dup, err
}

func (s *Spool) appendOp(o op) (dup bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(o)
}

func (s *Spool) appendLocked(o op) (dup bool, err error) {
	if err := s.f.append(o); err != nil {
		return false, fmt.Errorf("spool: %w: %w", store.ErrUnavailable, err)
	}
	s.pending = append(s.pending, o)
	if o.Kind == kindRecordUsage {
		k := ledgerKey(o.Entry)
		dup = s.ledger[k]
		s.ledger[k] = true
	}
	if len(s.pending)-s.applied == 1 {
		s.log.Warn("spool: backend unavailable, spooling metering writes")
	}
	return dup, nil
}
