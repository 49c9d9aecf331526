package govern

import (
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestRecoverDeadSessions: a session recorded live whose token lease has
// been gone for two passes a lease TTL apart is recorded idle and its
// reservations are released; a session whose lease is held, and one live
// on this instance, are left alone.
func TestRecoverDeadSessions(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	now := time.Now()
	g := &Governor{Store: st, LeaseTTL: 2 * time.Second, Now: func() time.Time { return now }}
	live := func(id string) *store.Session {
		rec := &store.Session{ID: id, TokenHash: "h_" + id, User: "u", Tier: "default", State: store.StateLive,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := st.CreateSession(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	dead, held, mine := live("vgs_dead"), live("vgs_held"), live("vgs_mine")
	acct := []store.BudgetAccount{{Key: "user:day:u:x", LimitNano: 1000, ExpiresAt: now.Add(time.Hour)}}
	for _, id := range []string{dead.ID, held.ID} {
		if res, err := st.Reserve(ctx, store.Reservation{ID: id + "/r1", Session: id, Accounts: acct, Want: 100, Min: 1}); err != nil || res.Granted != 100 {
			t.Fatalf("reserve: %+v %v", res, err)
		}
	}
	if ok, err := st.AcquireLease(ctx, "tok:"+held.ID, "other-instance/1", 1, time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	g.Open(mine, Hooks{Upstream: func(context.Context, []byte) error { return nil }})

	suspects := map[string]time.Time{}
	if n, err := g.recoverPass(ctx, suspects); n != 0 || err != nil {
		t.Fatalf("first pass recovered %d (%v): a missing lease must be seen twice", n, err)
	}
	now = now.Add(time.Second) // not a TTL yet
	if n, _ := g.recoverPass(ctx, suspects); n != 0 {
		t.Fatalf("recovered %d before a lease TTL passed", n)
	}
	now = now.Add(time.Second)
	if n, err := g.recoverPass(ctx, suspects); n != 1 || err != nil {
		t.Fatalf("recovered %d (%v), want the dead session", n, err)
	}
	for id, want := range map[string]string{dead.ID: store.StateIdle, held.ID: store.StateLive, mine.ID: store.StateLive} {
		if rec, _ := st.Session(ctx, id); rec.State != want {
			t.Errorf("%s: state %s, want %s", id, rec.State, want)
		}
	}
	if _, reserved, _ := st.Spent(ctx, acct[0].Key); reserved != 100 {
		t.Errorf("reserved %d, want only the held session's 100", reserved)
	}
	if a, _ := st.AuditEntries(ctx, store.AuditFilter{Kind: "recovered"}); len(a) != 1 || a[0].SessionID != dead.ID || a[0].Detail["released_nanousd"] != int64(100) {
		t.Errorf("audit %+v", a)
	}
}

// TestRecoverOnTheNextPass: passes a ticker's TTL apart recover a suspect
// on the next pass even when that pass reads the clock a little sooner
// after its tick than the one before did.
func TestRecoverOnTheNextPass(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	now := time.Now()
	g := &Governor{Store: st, LeaseTTL: 2 * time.Second, Now: func() time.Time { return now }}
	rec := &store.Session{ID: "vgs_dead", TokenHash: "h", User: "u", Tier: "default", State: store.StateLive, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	suspects := map[string]time.Time{}
	if n, _ := g.recoverPass(ctx, suspects); n != 0 {
		t.Fatalf("first pass recovered %d", n)
	}
	now = now.Add(2*time.Second - 3*time.Millisecond) // the next tick, read 3 ms sooner after it
	if n, err := g.recoverPass(ctx, suspects); n != 1 || err != nil {
		t.Fatalf("next pass recovered %d (%v), want the dead session", n, err)
	}
}
