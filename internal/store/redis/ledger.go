package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// RecordUsage stores e exactly once per (SessionID, ResponseID).
//
// The per-session hash field set with HSETNX is the single authority for
// "already recorded". The query indexes (sorted sets of the stored JSON,
// scored by time) live in other slots and are written after it with the
// stored JSON, which is idempotent: a retry after a failure between the two
// steps repairs the indexes without recording twice.
func (s *Store) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	if e.SessionID == "" || e.ResponseID == "" {
		return false, errors.New("redis: record usage: empty session or response id")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("redis: record usage: %w", err)
	}
	key := s.k.ledgerOfSession(e.SessionID)
	inserted, err := s.c.HSetNX(ctx, key, e.ResponseID, raw).Result()
	if err != nil {
		return false, unavailable("record usage", err)
	}
	stored := raw
	if !inserted {
		if stored, err = s.c.HGet(ctx, key, e.ResponseID).Bytes(); err != nil {
			return false, unavailable("record usage", err)
		}
		if err := json.Unmarshal(stored, &e); err != nil {
			return false, fmt.Errorf("redis: corrupt ledger entry: %w", err)
		}
	}
	z := goredis.Z{Score: usec(e.At), Member: stored}
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZAdd(ctx, s.k.ledgerAll(), z)
		if e.User != "" {
			p.ZAdd(ctx, s.k.ledgerOfUser(e.User), z)
		}
		if e.AppKeyID != "" {
			p.ZAdd(ctx, s.k.ledgerOfKey(e.AppKeyID), z)
		}
		return nil
	})
	if err != nil {
		return false, unavailable("record usage", err)
	}
	return inserted, nil
}

// LedgerEntries returns the entries matching f in time order (then session
// and response id).
func (s *Store) LedgerEntries(ctx context.Context, f store.LedgerFilter) ([]store.LedgerEntry, error) {
	var raws []string
	var err error
	if f.SessionID != "" {
		raws, err = s.c.HVals(ctx, s.k.ledgerOfSession(f.SessionID)).Result()
	} else {
		idx := s.k.ledgerAll()
		switch {
		case f.User != "":
			idx = s.k.ledgerOfUser(f.User)
		case f.AppKeyID != "":
			idx = s.k.ledgerOfKey(f.AppKeyID)
		}
		rng := &goredis.ZRangeBy{Min: "-inf", Max: "+inf"}
		if !f.Since.IsZero() {
			rng.Min = strconv.FormatInt(f.Since.UnixMicro()-1, 10)
		}
		if !f.Until.IsZero() {
			rng.Max = strconv.FormatInt(f.Until.UnixMicro()+1, 10)
		}
		raws, err = s.c.ZRangeByScore(ctx, idx, rng).Result()
	}
	if err != nil {
		return nil, unavailable("ledger entries", err)
	}
	out := make([]store.LedgerEntry, 0, len(raws))
	for _, raw := range raws {
		var e store.LedgerEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("redis: corrupt ledger entry: %w", err)
		}
		if matchLedger(e, f) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b store.LedgerEntry) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.ResponseID, b.ResponseID))
	})
	return out, nil
}

func matchLedger(e store.LedgerEntry, f store.LedgerFilter) bool {
	return (f.SessionID == "" || e.SessionID == f.SessionID) &&
		(f.User == "" || e.User == f.User) &&
		(f.AppKeyID == "" || e.AppKeyID == f.AppKeyID) &&
		(f.Since.IsZero() || !e.At.Before(f.Since)) &&
		(f.Until.IsZero() || e.At.Before(f.Until))
}
