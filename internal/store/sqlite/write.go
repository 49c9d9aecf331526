package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// DefaultMaxBatch is how many writes one transaction groups at most
// (WithMaxBatch).
const DefaultMaxBatch = 256

// queueLen bounds the writes waiting for the writer; a caller beyond it
// waits (or gives up with its ctx) to enqueue.
const queueLen = 4 * DefaultMaxBatch

// WithMaxBatch sets how many queued writes the writer groups into one
// transaction (default 256). 1 commits every write on its own: one fsync
// per write in durable mode, the reference group commit is measured
// against.
func WithMaxBatch(n int) Option { return func(s *Store) { s.maxBatch = max(n, 1) } }

// WithDurable makes every commit wait for fsync (synchronous=FULL): a write
// acknowledged is on disk and survives a power loss. The default
// (synchronous=NORMAL) fsyncs the WAL only at checkpoints: a power loss —
// not a process crash — may lose the last commits, never corrupts the
// file. With group commit one fsync covers every write of a batch.
func WithDurable(durable bool) Option { return func(s *Store) { s.durable = durable } }

// The states of a writeOp: queued until the writer claims it to run, or
// its caller's ctx ends first and the caller answers itself.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// writeOp is one write waiting for the writer.
type writeOp struct {
	ctx   context.Context
	name  string
	fn    func(context.Context, *sql.Tx) error
	state atomic.Int32
	err   error // fn's or the batch's outcome, set by the writer
	panic any   // fn's panic, raised again in the caller
	done  chan error
}

// tx runs fn as one write: the writer runs it inside a savepoint of the
// current batch's BEGIN IMMEDIATE transaction and answers once that
// transaction committed. fn's error rolls back fn's own changes only and
// is returned as it is; errors of the database itself (begin, savepoint,
// commit) are wrapped in store.ErrUnavailable. fn must use the ctx and tx
// it is given and must not call the Store (the writer would wait for
// itself). A caller whose ctx ends before fn starts gets the ctx error and
// fn never runs; once fn started, the caller waits for the commit.
func (s *Store) tx(ctx context.Context, name string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return unavailable(name, err)
	}
	op := &writeOp{ctx: ctx, name: name, fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(op); err != nil {
		return err
	}
	var err error
	select {
	case err = <-op.done:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return unavailable(name, ctx.Err())
		}
		err = <-op.done // running or committing: its outcome is known soon
	}
	if op.panic != nil {
		panic(op.panic)
	}
	return err
}

// enqueue hands op to the writer; it fails once the Store is closed.
func (s *Store) enqueue(op *writeOp) error {
	s.queueMu.RLock()
	defer s.queueMu.RUnlock()
	if s.queueClosed {
		return fmt.Errorf("sqlite: %s: store closed: %w", op.name, store.ErrUnavailable)
	}
	select {
	case s.queue <- op:
		return nil
	case <-op.ctx.Done():
		return unavailable(op.name, op.ctx.Err())
	}
}

// stopWriter lets the writer run what is queued, then waits for it to end.
func (s *Store) stopWriter() {
	s.queueMu.Lock()
	if !s.queueClosed {
		s.queueClosed = true
		close(s.queue)
	}
	s.queueMu.Unlock()
	<-s.writerDone
}

// writeLoop is the writer: it takes the first queued write and every other
// queued at that moment (up to maxBatch) and commits them together, until
// stopWriter closed the queue and it is empty.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*writeOp, 0, s.maxBatch)
	for op := range s.queue {
		batch = append(batch[:0], op)
	more:
		for len(batch) < s.maxBatch {
			select {
			case op, ok := <-s.queue:
				if !ok {
					break more
				}
				batch = append(batch, op)
			default:
				break more
			}
		}
		s.runBatch(batch)
		clear(batch) // let the ops be collected
	}
}

// runBatch runs batch in one transaction, each op in its own savepoint,
// commits once and then answers every op it ran.
func (s *Store) runBatch(batch []*writeOp) {
	// Answer at once the ops whose ctx already ended: no transaction for them.
	live := batch[:0]
	for _, op := range batch {
		if op.ctx.Err() == nil {
			live = append(live, op)
		} else if op.state.CompareAndSwap(opQueued, opTaken) {
			op.done <- unavailable(op.name, op.ctx.Err())
		}
	}
	if len(live) == 0 {
		return
	}
	tx, err := s.begin()
	if err != nil {
		for _, op := range live {
			if op.state.CompareAndSwap(opQueued, opTaken) {
				op.done <- unavailable(op.name, err)
			}
		}
		return
	}
	// A write alone needs no savepoint: when it fails, the whole
	// transaction is rolled back.
	alone := len(live) == 1
	var ran []*writeOp
	var broken error // the transaction itself failed, or the lone write: nothing commits
	for _, op := range live {
		if !op.state.CompareAndSwap(opQueued, opTaken) {
			continue // abandoned: its caller has answered itself
		}
		ran = append(ran, op)
		if broken != nil {
			op.err = unavailable(op.name, broken)
			continue
		}
		op.err, broken = s.runOp(tx, op, !alone)
		if alone && op.err != nil {
			broken = op.err
		}
	}
	if broken != nil {
		_ = tx.Rollback()
		for _, op := range ran {
			if op.err == nil {
				op.err = unavailable(op.name, broken)
			}
		}
	} else if err := tx.Commit(); err != nil {
		for _, op := range ran {
			if op.err == nil {
				op.err = unavailable(op.name, err)
			}
		}
	} else {
		s.commits.Add(1)
		s.committedOps.Add(uint64(len(ran)))
	}
	for _, op := range ran {
		op.done <- op.err
	}
}

// begin starts the batch's BEGIN IMMEDIATE transaction (the DSN's _txlock).
// busy_timeout makes SQLite wait for another process's write lock; the
// cases where SQLite answers SQLITE_BUSY at once are retried here until the
// busy timeout.
func (s *Store) begin() (*sql.Tx, error) {
	deadline := time.Now().Add(s.busyTimeout)
	wait := time.Millisecond
	for {
		tx, err := s.db.BeginTx(context.Background(), nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return tx, err
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// runOp runs op in a savepoint of tx (unless savepoint is false): on op's
// error its changes are rolled back and the error is returned. broken is a
// failure of the transaction itself (a savepoint that cannot be made or
// undone), which fails the whole batch. fn's statements get a ctx that is never cancelled: a
// cancellation interrupting a statement could roll back the whole
// transaction, the other ops' writes with it.
func (s *Store) runOp(tx *sql.Tx, op *writeOp, savepoint bool) (err, broken error) {
	if err := op.ctx.Err(); err != nil {
		return unavailable(op.name, err), nil
	}
	if !savepoint {
		return callOp(tx, op), nil
	}
	if _, err := s.exec(context.Background(), tx, `SAVEPOINT op`); err != nil {
		return unavailable(op.name, err), err
	}
	if err := callOp(tx, op); err != nil {
		if _, rerr := tx.Exec(`ROLLBACK TO op; RELEASE op`); rerr != nil {
			return err, rerr
		}
		return err, nil
	}
	if _, err := s.exec(context.Background(), tx, `RELEASE op`); err != nil {
		return unavailable(op.name, err), err
	}
	return nil, nil
}

// callOp calls op.fn; a panic is kept for the caller and fails the op.
func callOp(tx *sql.Tx, op *writeOp) (err error) {
	defer func() {
		if p := recover(); p != nil {
			op.panic = p
			err = fmt.Errorf("sqlite: %s: panic: %v", op.name, p)
		}
	}()
	return op.fn(context.WithoutCancel(op.ctx), tx)
}

// WriteStats counts the writer's work since Open.
type WriteStats struct {
	Commits uint64 // transactions committed
	Writes  uint64 // writes those transactions held
}

// WriteStats reports the commits and the writes they held so far:
// Writes/Commits is the mean batch.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Commits: s.commits.Load(), Writes: s.committedOps.Load()}
}
