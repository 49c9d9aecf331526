package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// PublishRevocation appends r to the revocations table, where every
// subscriber on the file (in any process) finds it on its next poll. Rows
// older than the retention are pruned in the same transaction.
func (s *Store) PublishRevocation(ctx context.Context, r store.Revocation) error {
	now := s.now()
	return s.tx(ctx, "publish revocation", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO revocations (kind, target, at, published_at) VALUES (?, ?, ?, ?)`,
			r.Kind, r.ID, nanos(r.At), now.UnixNano())
		if err != nil {
			return unavailable("publish revocation", err)
		}
		// AUTOINCREMENT ids are never reused, so pruning cannot make a
		// subscriber's cursor skip or repeat a row.
		if _, err := s.exec(ctx, tx, `DELETE FROM revocations WHERE published_at < ?`,
			now.Add(-s.revocationRetention).UnixNano()); err != nil {
			return unavailable("publish revocation", err)
		}
		return nil
	})
}

// SubscribeRevocations delivers every revocation published after it returns,
// in publish order, until ctx is done or the Store is closed; then the
// channel is closed. A goroutine polls the table every poll interval for
// rows after the last id it has seen; a failed poll is retried on the next
// tick, so a transient error delays delivery but loses nothing.
func (s *Store) SubscribeRevocations(ctx context.Context) (<-chan store.Revocation, error) {
	var cursor int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM revocations`).Scan(&cursor); err != nil {
		return nil, unavailable("subscribe revocations", err)
	}
	s.subMu.Lock()
	select {
	case <-s.done:
		s.subMu.Unlock()
		return nil, fmt.Errorf("sqlite: subscribe revocations: store closed: %w", store.ErrUnavailable)
	default:
	}
	s.subs.Add(1)
	s.subMu.Unlock()
	out := make(chan store.Revocation)
	go func() {
		defer s.subs.Done()
		defer close(out)
		ticker := time.NewTicker(s.pollInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-ticker.C:
			}
			batch, last, err := s.revocationsAfter(ctx, cursor)
			if err != nil {
				continue
			}
			for _, r := range batch {
				select {
				case out <- r:
				case <-ctx.Done():
					return
				case <-s.done:
					return
				}
			}
			cursor = last
		}
	}()
	return out, nil
}

// revocationsAfter returns the revocations with id > cursor in id order and
// the last id read.
func (s *Store) revocationsAfter(ctx context.Context, cursor int64) ([]store.Revocation, int64, error) {
	rows, err := s.dbQuery(ctx, `SELECT id, kind, target, at FROM revocations WHERE id > ? ORDER BY id LIMIT 1000`, cursor)
	if err != nil {
		return nil, cursor, err
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		var at int64
		if err := rows.Scan(&cursor, &r.Kind, &r.ID, &at); err != nil {
			return nil, cursor, err
		}
		r.At = fromNanos(at)
		out = append(out, r)
	}
	return out, cursor, rows.Err()
}
