package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"testing"
)

// Queued reports how many writes wait for the writer.
func (s *Store) Queued() int { return len(s.queue) }

// Closing reports whether Close has closed the writer's queue.
func (s *Store) Closing() bool {
	s.queueMu.RLock()
	defer s.queueMu.RUnlock()
	return s.queueClosed
}

// HoldWriter returns once the writer runs a write that waits for release:
// the writes queued meanwhile all form the next batch. release returns
// once that write committed; calling it again is a no-op.
func (s *Store) HoldWriter(t testing.TB) (release func()) {
	t.Helper()
	held, rel := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.tx(context.Background(), "hold", func(context.Context, *sql.Tx) error {
			close(held)
			<-rel
			return nil
		})
	}()
	<-held
	var once sync.Once
	return func() {
		once.Do(func() {
			close(rel)
			if err := <-errc; err != nil {
				t.Errorf("held write: %v", err)
			}
		})
	}
}

// WriteThenFail is a write that inserts an audit record of kind and then
// fails with fail: its insert must be rolled back.
func (s *Store) WriteThenFail(ctx context.Context, kind string, fail error) error {
	return s.tx(ctx, "write then fail", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, kind, session_id, user, app_key_id, tier, instance, detail)
			VALUES (1, ?, '', '', '', '', '', '')`, kind); err != nil {
			return err
		}
		return fail
	})
}
