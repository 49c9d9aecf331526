package govern

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestRefusalFloodAuditBounded: a client sending thousands of refused
// events (each with a 10 KB type) writes its first RefusalAuditBurst
// refusals to the audit trail, then one refusal_summary per interval with
// the counts, and one more at Close; every row is small.
func TestRefusalFloodAuditBounded(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	st := memory.New()
	tier := testTier()
	g := &Governor{Store: st, Tiers: map[string]policy.Tier{tier.Name: tier}, Now: clock, RefusalAuditBurst: 5, RefusalSummaryEvery: time.Minute}
	rec := &store.Session{ID: "vgs_flood", User: "mallory", Tier: tier.Name, Model: "gpt-realtime", Config: json.RawMessage(`{"type":"realtime"}`),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), State: store.StateLive}
	s := g.Open(rec, Hooks{Upstream: func(context.Context, []byte) error { return nil }})
	ctx := context.Background()

	frame := []byte(`{"type":"` + strings.Repeat("x", 10_000) + `"}`)
	for range 2000 {
		if fwd, reply := s.Client(ctx, frame); fwd != nil || reply == nil {
			t.Fatal("a refused event was forwarded or not answered")
		}
	}
	rows := func() []store.AuditEntry {
		t.Helper()
		e, err := st.AuditEntries(ctx, store.AuditFilter{SessionID: rec.ID})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if got := rows(); len(got) != 5 {
		t.Fatalf("after 2000 refusals: %d audit rows, want the burst of 5", len(got))
	}
	advance(time.Minute)
	s.Client(ctx, frame) // the interval is over: one summary of 1996
	got := rows()
	if len(got) != 6 || got[5].Kind != "refusal_summary" || got[5].Detail["total"] != 1996 {
		t.Fatalf("after the interval: %d rows, last %+v; want a refusal_summary of 1996", len(got), got[len(got)-1])
	}
	for range 10 {
		s.Client(ctx, frame)
	}
	s.Close(ctx)
	got = rows()
	if len(got) != 7 || got[6].Kind != "refusal_summary" || got[6].Detail["total"] != 10 {
		t.Fatalf("after Close: %d rows, last %+v; want a refusal_summary of 10", len(got), got[len(got)-1])
	}
	for _, e := range got {
		b, _ := json.Marshal(e)
		if len(b) > 1024 {
			t.Errorf("audit row of %d bytes: %.200s", len(b), b)
		}
	}
}
