package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// AppendAudit appends e with the next sequence number. The counter, the
// log and its per-session and per-user indexes share one hash tag, so one
// script assigns and appends atomically: sequence order is append order
// across every instance. e is bounded first (store.AuditEntry.Bounded).
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	e = e.Bounded()
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Seq = 0
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("redis: append audit: %w", err)
	}
	keys := []string{s.k.auditSeq(), s.k.auditLog()}
	if e.SessionID != "" {
		keys = append(keys, s.k.auditOfSession(e.SessionID))
	}
	if e.User != "" {
		keys = append(keys, s.k.auditOfUser(e.User))
	}
	if err := auditAppendScript.Run(ctx, s.c, keys, raw).Err(); err != nil {
		return unavailable("append audit", err)
	}
	return nil
}

// AuditEntries returns entries matching f in sequence order (reversed when
// f.Newest), reading the most selective index (session, user, or the whole
// log) in pages between f.AfterSeq and f.BeforeSeq until f.Limit (default
// 1000) match.
func (s *Store) AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	idx := s.k.auditLog()
	switch {
	case f.SessionID != "":
		idx = s.k.auditOfSession(f.SessionID)
	case f.User != "":
		idx = s.k.auditOfUser(f.User)
	}
	const page = 500
	after, before := f.AfterSeq, "+inf"
	if f.BeforeSeq > 0 {
		before = "(" + strconv.FormatInt(f.BeforeSeq, 10)
	}
	var out []store.AuditEntry
	for len(out) < limit {
		rng := &goredis.ZRangeBy{Min: "(" + strconv.FormatInt(after, 10), Max: before, Count: page}
		var members []string
		var err error
		if f.Newest {
			members, err = s.c.ZRevRangeByScore(ctx, idx, rng).Result()
		} else {
			members, err = s.c.ZRangeByScore(ctx, idx, rng).Result()
		}
		if err != nil {
			return nil, unavailable("audit entries", err)
		}
		for _, m := range members {
			seqStr, raw, ok := strings.Cut(m, "|")
			seq, err := strconv.ParseInt(seqStr, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("redis: corrupt audit entry %q", seqStr)
			}
			if f.Newest {
				before = "(" + seqStr
			} else {
				after = seq
			}
			var e store.AuditEntry
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("redis: corrupt audit entry %d: %w", seq, err)
			}
			e.Seq = seq
			if !matchAudit(e, f) {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if len(members) < page {
			break
		}
	}
	return out, nil
}

func matchAudit(e store.AuditEntry, f store.AuditFilter) bool {
	return (f.Kind == "" || e.Kind == f.Kind) &&
		(f.SessionID == "" || e.SessionID == f.SessionID) &&
		(f.User == "" || e.User == f.User) &&
		(f.AppKeyID == "" || e.AppKeyID == f.AppKeyID) &&
		(f.Since.IsZero() || !e.At.Before(f.Since)) &&
		(f.Until.IsZero() || e.At.Before(f.Until)) &&
		e.Seq > f.AfterSeq && (f.BeforeSeq <= 0 || e.Seq < f.BeforeSeq)
}
