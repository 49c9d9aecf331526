package redis

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the audit pruning options, as in the SQLite backend.
const (
	// DefaultAuditRetention is how long audit records other than
	// store.PermanentAuditKinds are kept.
	DefaultAuditRetention = 30 * 24 * time.Hour
	// DefaultPruneInterval is how often a store prunes in the background.
	DefaultPruneInterval = time.Hour
)

// pruneBatch is how many log entries one batch examines: one read and one
// short script, so Redis never blocks for long whatever the backlog.
const pruneBatch = 256

// WithAuditRetention sets how long audit records other than
// store.PermanentAuditKinds (mints, ends, revocations, keys created: kept
// forever) are kept (default 30 days; 0 keeps every record).
func WithAuditRetention(d time.Duration) Option { return func(s *Store) { s.auditRetention = d } }

// WithPruneInterval sets how often the store prunes its audit trail in the
// background (default 1 h; 0 disables it, PruneAudit can still be called).
func WithPruneInterval(d time.Duration) Option { return func(s *Store) { s.pruneInterval = d } }

// PruneAudit removes the audit entries older than the audit retention
// (by the store's clock) whose kind is not in store.PermanentAuditKinds,
// from the log and from their session and user indexes, and reports how
// many it removed. It does nothing when the retention is 0.
//
// It walks the log in sequence order from a cursor kept in Redis, in
// batches of pruneBatch, and stops at the first entry still within the
// retention: sequence order is append order, so what follows is younger
// too. An entry appended after a younger one (an instance whose clock lags,
// a caller-given time) waits until the younger one is pruned or passed.
// Entries passed (permanent kinds, unreadable members) are never read
// again. Each batch's removal is one script that only removes and moves
// the cursor forward, so every instance may prune, concurrently too.
func (s *Store) PruneAudit(ctx context.Context) (int64, error) {
	if s.auditRetention <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.auditRetention)
	cur, err := s.c.Get(ctx, s.k.auditPruned()).Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, unavailable("prune audit", err)
	}
	var removed int64
	for {
		zs, err := s.c.ZRangeByScoreWithScores(ctx, s.k.auditLog(), &goredis.ZRangeBy{
			Min: "(" + strconv.FormatInt(cur, 10), Max: "+inf", Count: pruneBatch,
		}).Result()
		if err != nil {
			return removed, unavailable("prune audit", err)
		}
		b := auditPruneBatch{keys: []string{s.k.auditPruned(), s.k.auditLog()}, at: map[string]int{}}
		next, young := cur, false
		for _, z := range zs {
			seq := int64(z.Score)
			e, ok := decodeHead(z.Member)
			if ok && !e.At.Before(cutoff) {
				young = true
				break
			}
			if ok && !slices.Contains(store.PermanentAuditKinds, e.Kind) {
				b.remove(seq, s.keyIf(e.SessionID, s.k.auditOfSession), s.keyIf(e.User, s.k.auditOfUser))
			}
			next = seq
		}
		if next > cur {
			n, err := auditPruneScript.Run(ctx, s.c, b.keys, append([]any{next}, b.args...)...).Int64()
			if err != nil {
				return removed, unavailable("prune audit", err)
			}
			removed += n
			cur = next
		}
		if young || len(zs) < pruneBatch {
			return removed, nil
		}
	}
}

// auditEntryHead is what pruning reads of an entry.
type auditEntryHead struct {
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"`
	SessionID string    `json:"session_id"`
	User      string    `json:"user"`
}

// decodeHead decodes a log member ("<seq>|<entry JSON>"); ok is false for
// a member that cannot be read, which pruning passes and keeps.
func decodeHead(member any) (e auditEntryHead, ok bool) {
	m, _ := member.(string)
	_, raw, found := strings.Cut(m, "|")
	if !found || json.Unmarshal([]byte(raw), &e) != nil {
		return e, false
	}
	return e, true
}

// keyIf returns key(v), or "" when v is empty.
func (s *Store) keyIf(v string, key func(string) string) string {
	if v == "" {
		return ""
	}
	return key(v)
}

// auditPruneBatch builds the arguments of auditPruneScript: each index key
// once in KEYS, each entry as (seq, session index position, user index
// position) in ARGV.
type auditPruneBatch struct {
	keys []string
	at   map[string]int // index key → its 1-based KEYS position
	args []any
}

func (b *auditPruneBatch) remove(seq int64, sessionIdx, userIdx string) {
	b.args = append(b.args, seq, b.pos(sessionIdx), b.pos(userIdx))
}

func (b *auditPruneBatch) pos(key string) int {
	if key == "" {
		return 0
	}
	if i, ok := b.at[key]; ok {
		return i
	}
	b.keys = append(b.keys, key)
	b.at[key] = len(b.keys)
	return len(b.keys)
}

// pruneLoop prunes once at start and then every pruneInterval until Close
// cancels ctx. A failed run (Redis unreachable) is retried at the next
// tick; the cursor keeps what earlier batches did.
func (s *Store) pruneLoop(ctx context.Context) {
	defer s.bg.Done()
	t := time.NewTicker(s.pruneInterval)
	defer t.Stop()
	for {
		n, err := s.PruneAudit(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("redis: prune audit", "err", err, "removed", n)
		case n > 0:
			s.log.Debug("redis: pruned audit", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
