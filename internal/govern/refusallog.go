package govern

import (
	"context"
	"sync"
	"time"
)

// Defaults of the refusal audit bounds (Governor.RefusalAuditBurst and
// Governor.RefusalSummaryEvery).
const (
	DefaultRefusalAuditBurst   = 20
	DefaultRefusalSummaryEvery = time.Minute
)

// refusalLog bounds the audit rows a client can cause within one
// connection: its first refusals (and session updates) are audited one
// by one; once the burst is spent, further ones are only counted, and the
// counts are written as one "refusal_summary" row per interval and at
// Close. A client flooding refused events costs the audit trail at most
// burst rows plus one row a minute.
type refusalLog struct {
	mu      sync.Mutex
	audited int
	counts  map[string]int // "kind:code" → not audited since the last summary
	since   time.Time      // start of the current summary interval
}

func (g *Governor) refusalBurst() int {
	if g.RefusalAuditBurst > 0 {
		return g.RefusalAuditBurst
	}
	return DefaultRefusalAuditBurst
}

func (g *Governor) refusalEvery() time.Duration {
	if g.RefusalSummaryEvery > 0 {
		return g.RefusalSummaryEvery
	}
	return DefaultRefusalSummaryEvery
}

// auditBounded audits one client-caused record of the session (kind
// "refusal", "limit", "session_update") within the session's refusal
// bounds. code names it in the summary's counts.
func (s *Session) auditBounded(ctx context.Context, kind, code string, detail map[string]any) {
	l := &s.refusals
	now := s.g.now()
	l.mu.Lock()
	if l.audited < s.g.refusalBurst() {
		l.audited++
		l.mu.Unlock()
		s.g.audit(ctx, s.rec, kind, detail)
		return
	}
	if l.counts == nil {
		l.counts, l.since = map[string]int{}, now
	}
	l.counts[kind+":"+code]++
	var summary map[string]any
	if now.Sub(l.since) >= s.g.refusalEvery() {
		summary = l.takeLocked(now)
	}
	l.mu.Unlock()
	if summary != nil {
		s.g.audit(ctx, s.rec, "refusal_summary", summary)
	}
}

// flushRefusals writes the counts not yet summarised (at Close).
func (s *Session) flushRefusals(ctx context.Context) {
	l := &s.refusals
	l.mu.Lock()
	summary := l.takeLocked(s.g.now())
	l.mu.Unlock()
	if summary != nil {
		s.g.audit(ctx, s.rec, "refusal_summary", summary)
	}
}

// takeLocked returns the summary of the counts and starts a new interval;
// nil when nothing was counted.
func (l *refusalLog) takeLocked(now time.Time) map[string]any {
	total := 0
	counts := make(map[string]any, len(l.counts))
	for k, n := range l.counts {
		if n > 0 {
			counts[k] = n
			total += n
		}
	}
	if total == 0 {
		return nil
	}
	d := map[string]any{"counts": counts, "total": total, "since": l.since.UTC().Format(time.RFC3339Nano)}
	l.counts, l.since = map[string]int{}, now
	return d
}
