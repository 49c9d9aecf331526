package server

import (
	"context"
	"github.com/voicegate/voicegate/internal/govern"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// wipeStore is a memory store that can forget every lease it granted, as
// a Redis restarted with an empty dataset does.
type wipeStore struct {
	*memory.Store
	gate   sync.RWMutex // held by wipe: lease calls wait for it
	mu     sync.Mutex
	leases map[[2]string]bool // key, holder
	// forgot holds the sessions the wipe "lost"; recreated, those whose
	// record was created again since.
	forgot, recreated map[string]bool
}

func (w *wipeStore) Session(ctx context.Context, id string) (*store.Session, error) {
	w.mu.Lock()
	gone := w.forgot[id]
	w.mu.Unlock()
	if gone {
		return nil, store.ErrNotFound
	}
	return w.Store.Session(ctx, id)
}

// CreateSession of a forgotten session restores it (the memory store
// still has the record underneath).
func (w *wipeStore) CreateSession(ctx context.Context, s *store.Session) error {
	w.mu.Lock()
	gone := w.forgot[s.ID]
	if gone {
		delete(w.forgot, s.ID)
		w.recreated[s.ID] = s.State == store.StateLive
	}
	w.mu.Unlock()
	if gone {
		return nil
	}
	return w.Store.CreateSession(ctx, s)
}

func (w *wipeStore) RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error {
	w.gate.RLock()
	defer w.gate.RUnlock()
	return w.Store.RenewLease(ctx, key, holder, ttl)
}

func (w *wipeStore) AcquireLease(ctx context.Context, key, holder string, max int, ttl time.Duration) (bool, error) {
	w.gate.RLock()
	defer w.gate.RUnlock()
	ok, err := w.Store.AcquireLease(ctx, key, holder, max, ttl)
	if ok {
		w.mu.Lock()
		w.leases[[2]string{key, holder}] = true
		w.mu.Unlock()
	}
	return ok, err
}

// wipe drops every lease granted so far and forgets the sessions ids,
// then runs then (if not nil) before any other lease call proceeds.
func (w *wipeStore) wipe(t *testing.T, then func(s *memory.Store), ids ...string) {
	t.Helper()
	w.gate.Lock()
	defer w.gate.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		w.forgot[id] = true
	}
	for l := range w.leases {
		if err := w.Store.ReleaseLease(context.Background(), l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	clear(w.leases)
	if then != nil {
		then(w.Store)
	}
}

// newLeaseEnv is a server with the fake relay over a wipeStore, with a
// per-user cap of 1 and a short lease TTL.
func newLeaseEnv(t *testing.T, ttl time.Duration) (*env, *wipeStore) {
	t.Helper()
	cfg := config.Default()
	cfg.AdminKey = testAdmin
	cfg.Store = "memory"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := &wipeStore{Store: memory.New(), leases: map[[2]string]bool{}, forgot: map[string]bool{}, recreated: map[string]bool{}}
	t.Cleanup(func() { st.Close() })
	tier := govTier()
	tier.Concurrency.PerUser = 1
	e := &env{t: t, st: st, relay: newFakeRelay(), clock: &clock{}}
	e.srv = NewServer(Deps{Config: cfg, Store: st, Relay: e.relay, Instance: "test-1", LeaseTTL: ttl,
		Govern: &govern.Governor{Store: st, Tiers: map[string]policy.Tier{"default": tier}, Instance: "test-1", LeaseTTL: ttl},
		Logger: slog.New(slog.DiscardHandler)})
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	return e, st
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leases(t *testing.T, st store.Store, key string) int {
	t.Helper()
	n, err := st.LeaseCount(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeasesReacquiredAfterLoss: when the store forgets the leases and the
// record of a live session (an empty Redis restart), the renewal acquires
// the leases again, so a second session of the same user with cap 1 is
// refused once more, and the record is created again as live.
func TestLeasesReacquiredAfterLoss(t *testing.T) {
	const ttl = 90 * time.Millisecond
	e, st := newLeaseEnv(t, ttl)
	tok1, id1 := mintToken(e, map[string]any{"user": "xena"})
	tok2, _ := mintToken(e, map[string]any{"user": "xena"})
	c := dialLive(t, e, tok1)
	defer c.Close(websocket.StatusNormalClosure, "")
	refused429(t, e, tok2)

	st.wipe(t, nil, id1)
	waitFor(t, 2*time.Second, "leases acquired again", func() bool {
		return leases(t, st, "user:xena") == 1 && leases(t, st, "tok:"+id1) == 1
	})
	refused429(t, e, tok2)
	if !e.relay.IsLive(id1) {
		t.Fatal("the first session is no longer live")
	}
	waitFor(t, 2*time.Second, "record re-created", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.recreated[id1]
	})
}

// TestLeaseLostSlotTakenKeepsSession: if the slot was taken before the
// renewal could acquire it again, the session keeps running, the loss is
// audited once, and the slot is taken back as soon as it frees.
func TestLeaseLostSlotTakenKeepsSession(t *testing.T) {
	const ttl = 90 * time.Millisecond
	e, st := newLeaseEnv(t, ttl)
	ctx := context.Background()
	tok1, id1 := mintToken(e, map[string]any{"user": "yuri"})
	c := dialLive(t, e, tok1)
	defer c.Close(websocket.StatusNormalClosure, "")

	st.wipe(t, func(m *memory.Store) {
		// Another instance takes the slot before the renewal runs.
		if ok, err := m.AcquireLease(ctx, "user:yuri", "intruder", 1, time.Minute); err != nil || !ok {
			t.Errorf("intruder acquire: %v %v", ok, err)
		}
	})
	lost := func() []store.AuditEntry {
		es, err := st.AuditEntries(ctx, store.AuditFilter{Kind: "limit", SessionID: id1})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.AuditEntry
		for _, e := range es {
			if e.Detail["limit"] == "lease_lost" {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, 2*time.Second, "lease loss audited", func() bool { return len(lost()) == 1 })
	time.Sleep(3 * ttl) // several more renewals: still audited once
	if es := lost(); len(es) != 1 || es[0].Detail["lease"] != "user" {
		t.Fatalf("lease_lost audit entries %+v, want one for the user lease", es)
	}
	if !e.relay.IsLive(id1) {
		t.Fatal("the session was ended by the lease loss")
	}
	// The token lease (not contested) was acquired again.
	if n := leases(t, st, "tok:"+id1); n != 1 {
		t.Fatalf("token lease count %d, want 1", n)
	}
	if err := st.ReleaseLease(ctx, "user:yuri", "intruder"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "slot taken back", func() bool { return leases(t, st, "user:yuri") == 1 })
	if ok, _ := st.AcquireLease(ctx, "user:yuri", "other", 1, time.Minute); ok {
		t.Fatal("the cap of 1 does not hold after the slot was taken back")
	}
}
