package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestSessionsRoundTripAndIndexes(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	base := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	mk := func(i int, user, key string) *store.Session {
		return &store.Session{
			ID: fmt.Sprintf("vgs_%d", i), TokenHash: fmt.Sprintf("hash%d", i), TokenID: fmt.Sprintf("tok%d", i),
			User: user, AppKeyID: key, Tier: "free", Model: "gpt-realtime",
			Config: []byte(`{"voice":"alloy"}`), Limits: store.Limits{MaxSessionSeconds: 60},
			CreatedAt: base.Add(time.Duration(i) * time.Minute), ExpiresAt: base.Add(time.Hour), State: store.StateMinted,
		}
	}
	for i := range 5 {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		if err := s.CreateSession(ctx, mk(i, user, "key_a")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, mk(0, "x", "")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate id: %v, want ErrConflict", err)
	}
	dupHash := mk(9, "x", "")
	dupHash.TokenHash = "hash1"
	if err := s.CreateSession(ctx, dupHash); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate token hash: %v, want ErrConflict", err)
	}
	if _, err := s.Session(ctx, "vgs_9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a refused create: %v, want ErrNotFound", err)
	}

	got, err := s.SessionByTokenHash(ctx, "hash3")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "vgs_3" || got.TokenHash != "hash3" || got.User != "bob" || string(got.Config) != `{"voice":"alloy"}` ||
		!got.CreatedAt.Equal(base.Add(3*time.Minute)) || got.Limits.MaxSessionSeconds != 60 {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := s.SessionByTokenHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}

	ids := func(ss []*store.Session) []string {
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	list, err := s.ListSessions(ctx, store.SessionFilter{User: "alice"})
	if err != nil || fmt.Sprint(ids(list)) != "[vgs_4 vgs_2 vgs_0]" {
		t.Fatalf("alice's sessions = %v, %v", ids(list), err)
	}
	list, err = s.ListSessions(ctx, store.SessionFilter{AppKeyID: "key_a", Since: base.Add(2 * time.Minute), Limit: 2})
	if err != nil || fmt.Sprint(ids(list)) != "[vgs_4 vgs_3]" {
		t.Fatalf("since+limit = %v, %v", ids(list), err)
	}

	// Concurrent updates from two handles all land.
	other := open(t, url, s.k.p)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			h := s
			if i%2 == 1 {
				h = other
			}
			_, err := h.UpdateSession(ctx, "vgs_2", func(x *store.Session) error {
				x.LiveSeconds++
				x.State = store.StateLive
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err = s.Session(ctx, "vgs_2")
	if err != nil || got.LiveSeconds != 20 || got.State != store.StateLive {
		t.Fatalf("after updates: %+v, %v", got, err)
	}
	list, err = s.ListSessions(ctx, store.SessionFilter{State: store.StateLive})
	if err != nil || fmt.Sprint(ids(list)) != "[vgs_2]" {
		t.Fatalf("live sessions = %v, %v", ids(list), err)
	}

	boom := errors.New("boom")
	if _, err := s.UpdateSession(ctx, "vgs_2", func(*store.Session) error { return boom }); !errors.Is(err, boom) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("fn error: %v, want boom as is", err)
	}
	if _, err := s.UpdateSession(ctx, "vgs_404", func(*store.Session) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}

	// Records carry a TTL: retention after the connect deadline.
	ttl, err := s.c.PTTL(ctx, s.k.session("vgs_2")).Result()
	if err != nil || ttl <= 0 || ttl > DefaultRetention+time.Hour {
		t.Fatalf("session ttl = %s, %v", ttl, err)
	}
}

func TestUserRevocationOnlyMovesForward(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	if at, err := s.UserRevokedAt(ctx, "alice"); err != nil || !at.IsZero() {
		t.Fatalf("never revoked: %v, %v", at, err)
	}
	t1 := time.Date(2026, 11, 29, 2, 0, 0, 123, time.UTC)
	if err := s.RevokeUser(ctx, "alice", t1); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUser(ctx, "alice", t1.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, err := s.UserRevokedAt(ctx, "alice"); err != nil || !at.Equal(t1) {
		t.Fatalf("revoked at %v, %v; want %v", at, err, t1)
	}
}

func TestKeys(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	k1 := &store.AppKey{ID: "key_1", Hash: "h1", Hint: "vgk_…abcd", Name: "web", Tiers: []string{"free"}, CreatedAt: now}
	k2 := &store.AppKey{ID: "key_2", Hash: "h2", Name: "ios", CreatedAt: now.Add(time.Second)}
	for _, k := range []*store.AppKey{k1, k2} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateKey(ctx, &store.AppKey{ID: "key_3", Hash: "h1"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate hash: %v", err)
	}
	got, err := s.KeyByHash(ctx, "h1")
	if err != nil || got.ID != "key_1" || got.Hash != "h1" || got.Tiers[0] != "free" {
		t.Fatalf("by hash: %+v, %v", got, err)
	}
	if err := s.RevokeKey(ctx, "key_1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "key_1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "key_404", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := s.ListKeys(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "key_1" || !list[0].RevokedAt.Equal(now.Add(time.Minute)) || list[1].ID != "key_2" {
		t.Fatalf("list: %+v, %v", list, err)
	}
}

func TestLedgerExactlyOnce(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	a, b := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()
	base := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted := 0
	for i := range 40 {
		wg.Go(func() {
			h := a
			if i%2 == 1 {
				h = b
			}
			resp := i % 10 // each response recorded 4 times concurrently
			e := store.LedgerEntry{
				SessionID: "vgs_1", ResponseID: fmt.Sprintf("resp_%d", resp), User: "alice", AppKeyID: "key_1",
				Status: "completed", Usage: store.Usage{TotalTokens: 10}, CostNanoUSD: 100,
				At: base.Add(time.Duration(resp) * time.Second),
			}
			ok, err := h.RecordUsage(ctx, e)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				inserted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if inserted != 10 {
		t.Fatalf("inserted %d times, want 10", inserted)
	}
	for _, f := range []store.LedgerFilter{{}, {SessionID: "vgs_1"}, {User: "alice"}, {AppKeyID: "key_1"}} {
		got, err := a.LedgerEntries(ctx, f)
		if err != nil || len(got) != 10 {
			t.Fatalf("filter %+v: %d entries, %v; want 10", f, len(got), err)
		}
		for i, e := range got {
			if e.ResponseID != fmt.Sprintf("resp_%d", i) {
				t.Fatalf("filter %+v: entry %d is %s, want time order", f, i, e.ResponseID)
			}
		}
	}
	got, err := a.LedgerEntries(ctx, store.LedgerFilter{User: "alice", Since: base.Add(3 * time.Second), Until: base.Add(5 * time.Second)})
	if err != nil || len(got) != 2 || got[0].ResponseID != "resp_3" || got[1].ResponseID != "resp_4" {
		t.Fatalf("since/until: %+v, %v", got, err)
	}
	if got, err := a.LedgerEntries(ctx, store.LedgerFilter{User: "bob"}); err != nil || len(got) != 0 {
		t.Fatalf("other user: %+v, %v", got, err)
	}
}

func TestAuditSequence(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	a, b := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			h := a
			if i%2 == 1 {
				h = b
			}
			kind := "mint"
			if i%3 == 0 {
				kind = "revoke"
			}
			err := h.AppendAudit(ctx, store.AuditEntry{Kind: kind, SessionID: fmt.Sprintf("vgs_%d", i), Detail: map[string]any{"n": i}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	all, err := a.AuditEntries(ctx, store.AuditFilter{})
	if err != nil || len(all) != 30 {
		t.Fatalf("all: %d, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) || e.At.IsZero() {
			t.Fatalf("entry %d: seq %d at %v", i, e.Seq, e.At)
		}
	}
	revokes, err := a.AuditEntries(ctx, store.AuditFilter{Kind: "revoke", AfterSeq: 5, Limit: 3})
	if err != nil || len(revokes) != 3 {
		t.Fatalf("revokes: %+v, %v", revokes, err)
	}
	for _, e := range revokes {
		if e.Kind != "revoke" || e.Seq <= 5 {
			t.Fatalf("filtered entry %+v", e)
		}
	}
	one, err := b.AuditEntries(ctx, store.AuditFilter{SessionID: "vgs_7"})
	if err != nil || len(one) != 1 || one[0].SessionID != "vgs_7" || one[0].Detail["n"] != float64(7) {
		t.Fatalf("by session: %+v, %v", one, err)
	}
	if err := a.AppendAudit(ctx, store.AuditEntry{Kind: "mint", User: "alice", SessionID: "vgs_7"}); err != nil {
		t.Fatal(err)
	}
	byUser, err := b.AuditEntries(ctx, store.AuditFilter{User: "alice"})
	if err != nil || len(byUser) != 1 || byUser[0].Seq != 31 {
		t.Fatalf("by user: %+v, %v", byUser, err)
	}
	if two, err := b.AuditEntries(ctx, store.AuditFilter{SessionID: "vgs_7"}); err != nil || len(two) != 2 {
		t.Fatalf("by session after append: %+v, %v", two, err)
	}
}

// TestListSessionsDropsExpired: index entries of sessions whose record
// expired are skipped and removed.
func TestListSessionsDropsExpired(t *testing.T) {
	url, _, _ := testServer(t)
	s := open(t, url, uniquePrefix())
	ctx := context.Background()
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // long past: still listed
	for i := range 300 {
		sess := &store.Session{ID: fmt.Sprintf("vgs_%03d", i), CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: base, State: store.StateEnded}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	// Expire every other session among the newest 250 (what TTL would do).
	for i := 50; i < 300; i += 2 {
		if err := s.c.Del(ctx, s.k.session(fmt.Sprintf("vgs_%03d", i))).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListSessions(ctx, store.SessionFilter{Limit: 150})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 || got[0].ID != "vgs_299" || got[124].ID != "vgs_051" || got[125].ID != "vgs_049" || got[149].ID != "vgs_025" {
		t.Fatalf("listed %d: first %s, [124] %s, [125] %s, last %s", len(got), got[0].ID, got[124].ID, got[125].ID, got[149].ID)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID >= got[i-1].ID {
			t.Fatalf("not newest first or duplicated at %d: %s after %s", i, got[i].ID, got[i-1].ID)
		}
	}
	if n, err := s.c.ZCard(ctx, s.k.sessionsAll()).Result(); err != nil || n != 175 {
		t.Fatalf("index holds %d, %v; want the 125 expired entries removed (175 left)", n, err)
	}
}
