package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var auditTests = []test{
	{"AppendOrder", testAuditAppendOrder},
	{"Filters", testAuditFilters},
	{"DefaultLimit", testAuditDefaultLimit},
	{"ConcurrentAppend", testAuditConcurrentAppend},
	{"AppKeyFilterBeforeLimit", testAuditAppKeyFilter},
	{"Bounded", testAuditBounded},
}

// testAuditAppKeyFilter: an app key's two entries among many others are
// found by a filtered query with a small limit, and paged with the cursor.
func testAuditAppKeyFilter(t *testing.T, h *harness) {
	s := h.handle(t)
	for i := range 60 {
		e := store.AuditEntry{At: at(time.Duration(i) * time.Millisecond), Kind: "mint", AppKeyID: "key_other"}
		if i == 20 || i == 50 {
			e.AppKeyID, e.SessionID = "key_mine", fmt.Sprint(i)
		}
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.AuditEntries(t.Context(), store.AuditFilter{AppKeyID: "key_mine", Limit: 1})
	if err != nil || len(first) != 1 || first[0].SessionID != "20" {
		t.Fatalf("first page = %+v, %v; want the entry of session 20", first, err)
	}
	next, err := s.AuditEntries(t.Context(), store.AuditFilter{AppKeyID: "key_mine", Limit: 1, AfterSeq: first[0].Seq})
	if err != nil || len(next) != 1 || next[0].SessionID != "50" {
		t.Fatalf("second page = %+v, %v; want the entry of session 50", next, err)
	}
	last, err := s.AuditEntries(t.Context(), store.AuditFilter{AppKeyID: "key_mine", Limit: 1, AfterSeq: next[0].Seq})
	if err != nil || len(last) != 0 {
		t.Fatalf("third page = %+v, %v; want none", last, err)
	}
}

// testAuditBounded: an entry carrying a 1 MiB string from a client is
// stored bounded.
func testAuditBounded(t *testing.T, h *harness) {
	s := h.handle(t)
	huge := strings.Repeat("A", 1<<20)
	e := store.AuditEntry{At: at(0), Kind: "refusal", SessionID: "vgs_b", User: huge,
		Detail: map[string]any{"event_type": huge, "path": "/v1/\x00" + huge}}
	if err := s.AppendAudit(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	got, err := s.AuditEntries(t.Context(), store.AuditFilter{SessionID: "vgs_b"})
	if err != nil || len(got) != 1 {
		t.Fatalf("AuditEntries = %d, %v", len(got), err)
	}
	g := got[0]
	if len(g.User) > 2*store.MaxAuditString {
		t.Errorf("User stored with %d bytes", len(g.User))
	}
	for _, k := range []string{"event_type", "path"} {
		if v, _ := g.Detail[k].(string); len(v) > store.MaxAuditString || v == "" {
			t.Errorf("Detail[%s] stored with %d bytes", k, len(v))
		}
	}
}

func testAuditAppendOrder(t *testing.T, h *harness) {
	a, b := h.two(t)
	kinds := []string{"mint", "connect", "session_update", "disconnect", "revoke"}
	for i, k := range kinds {
		s := []store.Store{a, b}[i%2]
		e := store.AuditEntry{
			// Times deliberately not in append order: order is by Seq.
			At: at(time.Duration(len(kinds)-i) * time.Second), Kind: k, SessionID: "vgs_1",
			User: "alice", AppKeyID: "key_a", Tier: "pro", Instance: "i-1",
			Detail: map[string]any{"reason": "test " + k, "n": "1"},
		}
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatalf("AppendAudit(%s): %v", k, err)
		}
	}
	got, err := a.AuditEntries(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(kinds) {
		t.Fatalf("AuditEntries returned %d entries, want %d", len(got), len(kinds))
	}
	var prev int64
	for i, e := range got {
		if e.Kind != kinds[i] {
			t.Errorf("entry %d: Kind = %s, want %s (append order)", i, e.Kind, kinds[i])
		}
		if e.Seq <= prev {
			t.Errorf("entry %d: Seq = %d after %d, want increasing and positive", i, e.Seq, prev)
		}
		prev = e.Seq
		if !e.At.Equal(at(time.Duration(len(kinds)-i)*time.Second)) || e.SessionID != "vgs_1" || e.User != "alice" ||
			e.AppKeyID != "key_a" || e.Tier != "pro" || e.Instance != "i-1" {
			t.Errorf("entry %d did not round-trip: %+v", i, e)
		}
		if e.Detail["reason"] != "test "+kinds[i] || e.Detail["n"] != "1" || len(e.Detail) != 2 {
			t.Errorf("entry %d: Detail = %v", i, e.Detail)
		}
	}
}

func testAuditFilters(t *testing.T, h *harness) {
	a, b := h.two(t)
	seed := []store.AuditEntry{
		{At: at(0), Kind: "mint", SessionID: "vgs_1", User: "alice"},
		{At: at(1 * time.Second), Kind: "connect", SessionID: "vgs_1", User: "alice"},
		{At: at(2 * time.Second), Kind: "mint", SessionID: "vgs_2", User: "bob"},
		{At: at(3 * time.Second), Kind: "auth_refused"},
		{At: at(4 * time.Second), Kind: "disconnect", SessionID: "vgs_1", User: "alice"},
		{At: at(5 * time.Second), Kind: "revoke", SessionID: "vgs_2", User: "bob"},
	}
	for _, e := range seed {
		if err := a.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := b.AuditEntries(t.Context(), store.AuditFilter{})
	if err != nil || len(all) != len(seed) {
		t.Fatalf("AuditEntries = %d entries, %v", len(all), err)
	}
	seqs := make([]int64, len(all))
	for i, e := range all {
		seqs[i] = e.Seq
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int
	}{
		{"kind", store.AuditFilter{Kind: "mint"}, []int{0, 2}},
		{"session", store.AuditFilter{SessionID: "vgs_1"}, []int{0, 1, 4}},
		{"user", store.AuditFilter{User: "bob"}, []int{2, 5}},
		{"since inclusive", store.AuditFilter{Since: at(4 * time.Second)}, []int{4, 5}},
		{"until exclusive", store.AuditFilter{Until: at(2 * time.Second)}, []int{0, 1}},
		{"after seq", store.AuditFilter{AfterSeq: seqs[3]}, []int{4, 5}},
		{"limit takes the oldest", store.AuditFilter{Limit: 2}, []int{0, 1}},
		{"page", store.AuditFilter{AfterSeq: seqs[1], Limit: 2}, []int{2, 3}},
		{"kind and session", store.AuditFilter{Kind: "mint", SessionID: "vgs_2"}, []int{2}},
		{"user after seq limit", store.AuditFilter{User: "alice", AfterSeq: seqs[0], Limit: 1}, []int{1}},
		{"no match", store.AuditFilter{Kind: "limit"}, nil},
		{"after last", store.AuditFilter{AfterSeq: seqs[5]}, nil},
		{"newest first", store.AuditFilter{Newest: true}, []int{5, 4, 3, 2, 1, 0}},
		{"limit takes the newest", store.AuditFilter{Newest: true, Limit: 2}, []int{5, 4}},
		{"newest next page", store.AuditFilter{Newest: true, BeforeSeq: seqs[4], Limit: 2}, []int{3, 2}},
		{"newest of a session", store.AuditFilter{Newest: true, SessionID: "vgs_1", Limit: 1}, []int{4}},
		{"newest user before", store.AuditFilter{Newest: true, User: "alice", BeforeSeq: seqs[4]}, []int{1, 0}},
		{"before seq oldest first", store.AuditFilter{BeforeSeq: seqs[2]}, []int{0, 1}},
		{"between cursors", store.AuditFilter{Newest: true, AfterSeq: seqs[1], BeforeSeq: seqs[5]}, []int{4, 3, 2}},
	}
	for _, tc := range tests {
		got, err := b.AuditEntries(t.Context(), tc.f)
		if err != nil {
			t.Fatalf("%s: AuditEntries: %v", tc.name, err)
		}
		var gotSeq, wantSeq []int64
		for _, e := range got {
			gotSeq = append(gotSeq, e.Seq)
		}
		for _, i := range tc.want {
			wantSeq = append(wantSeq, seqs[i])
		}
		if !slices.Equal(gotSeq, wantSeq) {
			t.Errorf("%s: AuditEntries seqs = %v, want %v", tc.name, gotSeq, wantSeq)
		}
	}
}

func testAuditDefaultLimit(t *testing.T, h *harness) {
	s := h.handle(t)
	const n = 1005
	for i := range n {
		if err := s.AppendAudit(t.Context(), store.AuditEntry{At: at(time.Duration(i) * time.Millisecond), Kind: "mint", SessionID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuditEntries(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 {
		t.Fatalf("AuditEntries with Limit 0 returned %d, want the default 1000", len(got))
	}
	rest, err := s.AuditEntries(t.Context(), store.AuditFilter{AfterSeq: got[999].Seq})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != n-1000 || rest[0].SessionID != "1000" {
		t.Errorf("next page: %d entries starting %v, want %d starting at 1000", len(rest), rest, n-1000)
	}
}

func testAuditConcurrentAppend(t *testing.T, h *harness) {
	a, b := h.two(t)
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b} {
		for range workers {
			wg.Go(func() {
				for range each {
					if err := s.AppendAudit(t.Context(), store.AuditEntry{At: now(), Kind: "connect"}); err != nil {
						t.Errorf("AppendAudit: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	got, err := a.AuditEntries(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*workers*each {
		t.Fatalf("AuditEntries returned %d, want %d", len(got), 2*workers*each)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("Seq not strictly increasing: %d then %d", got[i-1].Seq, got[i].Seq)
		}
	}
}
