package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the pruning options.
const (
	// DefaultRetention matches the Redis backend's: sessions and user
	// revocations are kept this long after they stop mattering.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultPruneInterval is how often a store prunes in the background.
	DefaultPruneInterval = time.Hour
	// DefaultAuditRetention is how long audit records other than
	// store.PermanentAuditKinds are kept.
	DefaultAuditRetention = 30 * 24 * time.Hour
	// budgetAccountGrace keeps a budget account this long past the end of
	// its window, so late settlements of that window still find it.
	budgetAccountGrace = 24 * time.Hour
)

// WithRetention sets how long a session is kept after it stops mattering
// (its connect deadline passed and it ended), and a user revocation after
// it was made (default 30 days, like the Redis backend). The ledger is the
// record of what was spent: it is never pruned.
func WithRetention(d time.Duration) Option { return func(s *Store) { s.retention = d } }

// WithAuditRetention sets how long audit records other than
// store.PermanentAuditKinds (mints, ends, revocations, keys created: kept
// forever) are kept (default 30 days; 0 keeps every record).
func WithAuditRetention(d time.Duration) Option { return func(s *Store) { s.auditRetention = d } }

// WithPruneInterval sets how often the store prunes in the background
// (default 1 h; 0 disables it, Prune can still be called).
func WithPruneInterval(d time.Duration) Option { return func(s *Store) { s.pruneInterval = d } }

// PruneStats counts the rows one Prune removed.
type PruneStats struct {
	Sessions, UserRevocations, BudgetAccounts, Audit int64
}

// Prune removes what has outlived the retention: sessions whose creation,
// connect deadline and end (or revocation) are all older than it — and sessions
// left "live" by a crashed process that started before it, since no
// upstream session lasts that long — user revocations older than it (no
// token outlives 7,200 s, so they no longer refuse anything), and budget
// accounts a day past the end of their window with no hold left. Every
// process on one file may prune; the deletes are idempotent.
func (s *Store) Prune(ctx context.Context) (PruneStats, error) {
	var st PruneStats
	now := s.now()
	cutoff := now.Add(-s.retention).UnixNano()
	err := s.tx(ctx, "prune", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM sessions
			WHERE (state != 'live' AND MAX(created_at, expires_at, ended_at, revoked_at) < ?1)
			   OR (state = 'live' AND started_at > 0 AND started_at < ?1)`, cutoff)
		if err != nil {
			return unavailable("prune sessions", err)
		}
		st.Sessions, _ = res.RowsAffected()
		if res, err = s.exec(ctx, tx, `DELETE FROM user_revocations WHERE revoked_at < ?`, cutoff); err != nil {
			return unavailable("prune user revocations", err)
		}
		st.UserRevocations, _ = res.RowsAffected()
		if res, err = s.exec(ctx, tx, `DELETE FROM budget_accounts
			WHERE expires_at != 0 AND expires_at < ?
			  AND key NOT IN (SELECT account_key FROM reservation_holds)`, now.Add(-budgetAccountGrace).UnixNano()); err != nil {
			return unavailable("prune budget accounts", err)
		}
		st.BudgetAccounts, _ = res.RowsAffected()
		if s.auditRetention > 0 {
			args := []any{now.Add(-s.auditRetention).UnixNano()}
			marks := make([]string, len(store.PermanentAuditKinds))
			for i, k := range store.PermanentAuditKinds {
				marks[i] = "?"
				args = append(args, k)
			}
			if res, err = s.exec(ctx, tx, `DELETE FROM audit WHERE at < ? AND kind NOT IN (`+strings.Join(marks, ",")+`)`, args...); err != nil {
				return unavailable("prune audit", err)
			}
			st.Audit, _ = res.RowsAffected()
		}
		return nil
	})
	return st, err
}

// pruneLoop prunes once at start and then every pruneInterval until Close.
// Each run is bounded by the busy timeout, so Close waits at most that.
func (s *Store) pruneLoop() {
	defer s.subs.Done()
	t := time.NewTicker(s.pruneInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.busyTimeout+time.Second)
		_, _ = s.Prune(ctx) // a busy or failing file is retried next tick
		cancel()
		select {
		case <-s.done:
			return
		case <-t.C:
		}
	}
}
