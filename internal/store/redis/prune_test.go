package redis

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestPruneAudit: entries past the audit retention go from the log and its
// indexes, in several batches, except the permanent kinds; what is younger
// stays; two instances pruning at once remove each entry once; an entry
// appended behind a younger one is pruned once that one is.
func TestPruneAudit(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		url, _, _ := redistest.Start(t)
		testPruneAudit(t, url)
	})
	t.Run("cluster", func(t *testing.T) {
		testPruneAudit(t, "redis+cluster://"+redistest.StartCluster(t))
	})
}

func testPruneAudit(t *testing.T, url string) {
	ctx := t.Context()
	clock := &testClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	const retention = 24 * time.Hour
	prefix := uniquePrefix()
	opts := []Option{WithClock(clock.Now), WithAuditRetention(retention), WithPruneInterval(0)}
	a, b := open(t, url, prefix, opts...), open(t, url, prefix, opts...)
	appendAll := func(es ...store.AuditEntry) {
		t.Helper()
		for _, e := range es {
			if err := a.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	prune := func(want int64) {
		t.Helper()
		var wg sync.WaitGroup
		var got [2]int64
		for i, s := range []*Store{a, b} {
			wg.Go(func() {
				n, err := s.PruneAudit(ctx)
				if err != nil {
					t.Error(err)
				}
				got[i] = n
			})
		}
		wg.Wait()
		if got[0]+got[1] != want {
			t.Fatalf("PruneAudit removed %d + %d, want %d in all", got[0], got[1], want)
		}
	}

	// Old: every kind for alice's and bob's sessions, a failed login, and
	// more refusals for carol than one batch holds.
	var kinds []string
	for _, k := range []string{"mint", "connect", "session_update", "refused", "limit", "disconnect", "revoke"} {
		kinds = append(kinds, k)
		appendAll(store.AuditEntry{Kind: k, SessionID: "vgs_1", User: "alice"},
			store.AuditEntry{Kind: k, SessionID: "vgs_2", User: "bob"})
	}
	appendAll(store.AuditEntry{Kind: "auth_refused"}, store.AuditEntry{Kind: "key_create", AppKeyID: "key_a"})
	const flood = 2*pruneBatch + 7
	for range flood {
		appendAll(store.AuditEntry{Kind: "refused", SessionID: "vgs_3", User: "carol"})
	}
	permanent := 2*3 + 1                                       // mint, disconnect, revoke per session; key_create
	old := 2*(len(kinds)-3) + 1 + flood                        // the rest
	appendAll(store.AuditEntry{Kind: "connect", User: "dave"}) // user index only

	// Within the retention nothing goes.
	clock.Advance(retention - time.Minute)
	prune(0)

	clock.Advance(2 * time.Minute)
	appendAll(store.AuditEntry{Kind: "connect", SessionID: "vgs_1", User: "alice"}, // young
		store.AuditEntry{Kind: "refused", SessionID: "vgs_4", User: "carol", At: clock.Now().Add(-48 * time.Hour)}) // old, behind a young one
	prune(int64(old + 1)) // dave's connect too
	prune(0)              // idempotent

	all := auditOf(t, a, store.AuditFilter{})
	if got, want := len(all), permanent+2; got != want {
		t.Fatalf("log holds %d entries after prune, want %d: %v", got, want, all)
	}
	for _, e := range all[:permanent] {
		if !slices.Contains(store.PermanentAuditKinds, e.Kind) {
			t.Errorf("kept %s (seq %d), not a permanent kind", e.Kind, e.Seq)
		}
	}
	checkAuditIndexes(t, a, all, "vgs_1", "vgs_2", "vgs_3", "vgs_4", "alice", "bob", "carol", "dave")
	for _, k := range []string{a.k.auditOfSession("vgs_3"), a.k.auditOfUser("dave")} {
		if n, err := a.c.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s exists (%d, %v) with every entry pruned", k, n, err)
		}
	}

	// Once the young entry ages, it and the entry behind it go.
	clock.Advance(retention + time.Second)
	prune(2)
	all = auditOf(t, a, store.AuditFilter{})
	if len(all) != permanent {
		t.Fatalf("log holds %d entries, want the %d permanent ones", len(all), permanent)
	}
	checkAuditIndexes(t, a, all, "vgs_1", "vgs_4", "alice", "carol")

	// New entries are examined from the cursor on, still pruned once old.
	appendAll(store.AuditEntry{Kind: "limit", SessionID: "vgs_5", User: "erin"})
	clock.Advance(retention + time.Second)
	prune(1)
	if got := auditOf(t, a, store.AuditFilter{User: "erin"}); len(got) != 0 {
		t.Errorf("erin's entries after prune: %v", got)
	}
}

// TestPruneAuditRetentionZero: a retention of 0 keeps every entry.
func TestPruneAuditRetentionZero(t *testing.T) {
	url, _, _ := testServer(t)
	clock := &testClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s := open(t, url, uniquePrefix(), WithClock(clock.Now), WithAuditRetention(0))
	for _, k := range []string{"connect", "refused", "limit", "mint"} {
		if err := s.AppendAudit(t.Context(), store.AuditEntry{Kind: k, SessionID: "vgs_1", User: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(10 * 365 * 24 * time.Hour)
	if n, err := s.PruneAudit(t.Context()); err != nil || n != 0 {
		t.Fatalf("PruneAudit = %d, %v; want nothing removed", n, err)
	}
	all := auditOf(t, s, store.AuditFilter{})
	if len(all) != 4 {
		t.Fatalf("log holds %d entries, want 4", len(all))
	}
	checkAuditIndexes(t, s, all, "vgs_1", "alice")
}

// TestPruneAuditInBackground: a store opened with a retention prunes at
// start, without being asked, and Close ends its loop.
func TestPruneAuditInBackground(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	clock := &testClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	w := open(t, url, prefix, WithClock(clock.Now), WithPruneInterval(0))
	for _, k := range []string{"refused", "mint", "connect"} {
		if err := w.AppendAudit(t.Context(), store.AuditEntry{Kind: k, User: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(DefaultAuditRetention + time.Hour)
	s, err := Open(t.Context(), url, WithPrefix(prefix), WithClock(clock.Now)) // the defaults: 30 days, hourly
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eventually(t, 5*time.Second, "the background prune", func() bool {
		return len(auditOf(t, w, store.AuditFilter{User: "alice"})) == 1
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func auditOf(t *testing.T, s *Store, f store.AuditFilter) []store.AuditEntry {
	t.Helper()
	f.Limit = 100000
	es, err := s.AuditEntries(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// checkAuditIndexes checks that the session and user indexes hold exactly
// the entries of the log that name them.
func checkAuditIndexes(t *testing.T, s *Store, all []store.AuditEntry, names ...string) {
	t.Helper()
	seqs := func(es []store.AuditEntry) string {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return fmt.Sprint(out)
	}
	for _, name := range names {
		var f store.AuditFilter
		var want []store.AuditEntry
		for _, e := range all {
			if e.SessionID == name || e.User == name {
				want = append(want, e)
			}
		}
		if len(name) > 4 && name[:4] == "vgs_" {
			f.SessionID = name
		} else {
			f.User = name
		}
		if got := auditOf(t, s, f); seqs(got) != seqs(want) {
			t.Errorf("entries of %s = %s, want %s", name, seqs(got), seqs(want))
		}
	}
}
