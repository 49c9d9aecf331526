package server

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// UsageRow is one group of ledger entries.
type UsageRow struct {
	Key       string `json:"key"`
	Responses int    `json:"responses"`
	// Transcriptions and AudioSeconds: as in SessionView.
	Transcriptions int            `json:"transcriptions,omitempty"`
	AudioSeconds   int64          `json:"audio_seconds,omitempty"`
	Usage          realtime.Usage `json:"usage"`
	CostUSD        float64        `json:"cost_usd"`
	CostNanoUSD    int64          `json:"cost_nanousd"`
}

// GroupBy values accepted by SummarizeUsage.
var GroupBy = []string{"user", "model", "day", "session"}

// SummarizeUsage groups ledger entries by user, model, day (UTC) or
// session, sorted by key; days newest first.
func SummarizeUsage(entries []store.LedgerEntry, groupBy string) ([]UsageRow, error) {
	var keyOf func(store.LedgerEntry) string
	switch groupBy {
	case "user", "":
		keyOf = func(e store.LedgerEntry) string { return e.User }
	case "model":
		keyOf = func(e store.LedgerEntry) string { return e.Model }
	case "day":
		keyOf = func(e store.LedgerEntry) string { return e.At.UTC().Format(time.DateOnly) }
	case "session":
		keyOf = func(e store.LedgerEntry) string { return e.SessionID }
	default:
		return nil, badRequest("invalid_value", "group_by", "group_by must be one of user, model, day, session.")
	}
	sums := map[string]*tally{}
	for _, e := range entries {
		k := keyOf(e)
		g := sums[k]
		if g == nil {
			g = &tally{}
			sums[k] = g
		}
		g.add(e)
	}
	rows := make([]UsageRow, 0, len(sums))
	for k, g := range sums {
		rows = append(rows, UsageRow{Key: k, Responses: g.responses, Transcriptions: g.transcriptions, AudioSeconds: g.usage.AudioSeconds,
			Usage: Wire(g.usage), CostNanoUSD: g.cost, CostUSD: float64(g.cost) / 1e9})
	}
	slices.SortFunc(rows, func(a, b UsageRow) int { return strings.Compare(a.Key, b.Key) })
	if groupBy == "day" {
		slices.Reverse(rows)
	}
	return rows, nil
}

// ParseTime accepts RFC 3339, a date (YYYY-MM-DD, UTC midnight) or Unix
// seconds.
func ParseTime(param, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, badRequest("invalid_value", param, fmt.Sprintf("%s must be RFC 3339, YYYY-MM-DD or Unix seconds.", param))
}

func handleUsage(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := store.LedgerFilter{User: q.Get("user")}
		err := onlyParams(q, "user", "since", "until", "group_by")
		if err == nil {
			f.Since, err = ParseTime("since", q.Get("since"))
		}
		if err == nil {
			f.Until, err = ParseTime("until", q.Get("until"))
		}
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if p := principalFrom(r.Context()); p.Kind == auth.KindAppKey {
			f.AppKeyID = p.AppKeyID()
		}
		groupBy := q.Get("group_by")
		if groupBy == "" {
			groupBy = "user"
		}
		entries, err := s.Store.LedgerEntries(r.Context(), f)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		rows, err := SummarizeUsage(entries, groupBy)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		encode(w, http.StatusOK, map[string]any{"object": "list", "group_by": groupBy, "data": rows})
	})
}

func handleAudit(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// Newest first; the next page is ?before=<seq of the last entry>.
		f := store.AuditFilter{Kind: q.Get("kind"), SessionID: q.Get("session_id"), User: q.Get("user"), Newest: true}
		err := onlyParams(q, "kind", "session_id", "user", "since", "until", "before", "limit")
		if err == nil {
			f.Since, err = ParseTime("since", q.Get("since"))
		}
		if err == nil {
			f.Until, err = ParseTime("until", q.Get("until"))
		}
		if err == nil && q.Get("before") != "" {
			if f.BeforeSeq, err = strconv.ParseInt(q.Get("before"), 10, 64); err != nil || f.BeforeSeq < 1 {
				err = badRequest("invalid_value", "before", "before must be the seq of an audit entry (a positive integer).")
			}
		}
		if err == nil {
			f.Limit, err = queryLimit(q, 100, 10000)
		}
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if p := principalFrom(r.Context()); p.Kind == auth.KindAppKey {
			f.AppKeyID = p.AppKeyID()
		}
		limit := f.Limit
		f.Limit++ // one more tells whether there is a next page
		entries, err := s.Store.AuditEntries(r.Context(), f)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		hasMore := len(entries) > limit
		entries = entries[:min(limit, len(entries))]
		if entries == nil {
			entries = []store.AuditEntry{}
		}
		encode(w, http.StatusOK, map[string]any{"object": "list", "data": entries, "has_more": hasMore})
	})
}

// tally sums ledger entries: responses and transcriptions apart, usage and
// cost together.
type tally struct {
	responses, transcriptions int
	usage                     store.Usage
	cost                      int64
}

func (t *tally) add(e store.LedgerEntry) {
	if e.Kind == store.LedgerTranscription {
		t.transcriptions++
	} else {
		t.responses++
	}
	t.usage = t.usage.Add(e.Usage)
	t.cost += e.CostNanoUSD
}
