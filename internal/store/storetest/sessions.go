package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var sessionTests = []test{
	{"CreateAndGet", testSessionCreateAndGet},
	{"NotFound", testSessionNotFound},
	{"Conflict", testSessionConflict},
	{"ByTokenHash", testSessionByTokenHash},
	{"ReturnsCopies", testSessionReturnsCopies},
	{"List", testSessionList},
	{"ListDefaultLimit", testSessionListDefaultLimit},
	{"Update", testSessionUpdate},
	{"UpdateAbort", testSessionUpdateAbort},
	{"UpdateAtomic", testSessionUpdateAtomic},
	{"RevokeUser", testRevokeUser},
}

// newSession returns a fully populated session created at epoch+created.
func newSession(id, user, appKey, state string, created time.Duration) *store.Session {
	return &store.Session{
		ID:        id,
		TokenHash: "hash-" + id,
		TokenID:   "tid-" + id,
		User:      user,
		Tier:      "default",
		AppKeyID:  appKey,
		Model:     "gpt-realtime",
		Config:    []byte(`{"type":"realtime","model":"gpt-realtime","audio":{"output":{"voice":"marin"}}}`),
		Limits:    store.Limits{MaxSessionSeconds: 600, IdleTimeoutSeconds: 30, BudgetNanoUSD: 5e9, MaxConcurrent: 2},
		CreatedAt: at(created),
		ExpiresAt: at(created + time.Minute),
		State:     state,
	}
}

// diffSession describes how got differs from want ("" when equal).
func diffSession(got, want *store.Session) string {
	if got == nil {
		return "got nil session"
	}
	var d []string
	cmp := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmpT := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmp("ID", got.ID, want.ID)
	cmp("TokenHash", got.TokenHash, want.TokenHash)
	cmp("TokenID", got.TokenID, want.TokenID)
	cmp("User", got.User, want.User)
	cmp("Tier", got.Tier, want.Tier)
	cmp("AppKeyID", got.AppKeyID, want.AppKeyID)
	cmp("Model", got.Model, want.Model)
	if !sameJSON(got.Config, want.Config) {
		d = append(d, fmt.Sprintf("Config = %s, want %s", got.Config, want.Config))
	}
	cmp("Limits", got.Limits, want.Limits)
	cmpT("CreatedAt", got.CreatedAt, want.CreatedAt)
	cmpT("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	cmp("State", got.State, want.State)
	cmp("Transport", got.Transport, want.Transport)
	cmpT("StartedAt", got.StartedAt, want.StartedAt)
	cmpT("EndedAt", got.EndedAt, want.EndedAt)
	cmp("LiveSeconds", got.LiveSeconds, want.LiveSeconds)
	cmp("EndReason", got.EndReason, want.EndReason)
	cmpT("RevokedAt", got.RevokedAt, want.RevokedAt)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func mustCreateSession(t *testing.T, s store.Store, sess *store.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

func testSessionCreateAndGet(t *testing.T, h *harness) {
	a, b := h.two(t)
	full := newSession("vgs_full", "alice", "key_1", store.StateEnded, 0)
	full.Transport = "websocket"
	full.StartedAt = at(time.Second)
	full.EndedAt = at(time.Minute)
	full.LiveSeconds = 59.5
	full.EndReason = "max_duration"
	full.RevokedAt = at(2 * time.Minute)
	bare := &store.Session{ID: "vgs_bare", TokenHash: "hash-bare", CreatedAt: at(0), ExpiresAt: at(time.Minute), State: store.StateMinted}
	for _, want := range []*store.Session{full, bare} {
		mustCreateSession(t, a, want)
		for name, s := range map[string]store.Store{"same handle": a, "other handle": b} {
			got, err := s.Session(t.Context(), want.ID)
			if err != nil {
				t.Fatalf("%s: Session(%s): %v", name, want.ID, err)
			}
			if d := diffSession(got, want); d != "" {
				t.Errorf("%s: Session(%s): %s", name, want.ID, d)
			}
		}
	}
}

func testSessionNotFound(t *testing.T, h *harness) {
	s := h.handle(t)
	mustCreateSession(t, s, newSession("vgs_1", "alice", "", store.StateMinted, 0))
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Session", func() error { _, err := s.Session(ctx, "vgs_missing"); return err }},
		{"SessionByTokenHash", func() error { _, err := s.SessionByTokenHash(ctx, "hash-missing"); return err }},
		{"UpdateSession", func() error {
			_, err := s.UpdateSession(ctx, "vgs_missing", func(*store.Session) error { return nil })
			return err
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", c.name, err)
		}
	}
	if _, err := s.Session(ctx, "vgs_missing"); err == nil {
		t.Fatal("UpdateSession of a missing id created it")
	}
}

func testSessionConflict(t *testing.T, h *harness) {
	a, b := h.two(t)
	orig := newSession("vgs_1", "alice", "", store.StateMinted, 0)
	mustCreateSession(t, a, orig)
	dup := newSession("vgs_1", "mallory", "", store.StateLive, time.Hour)
	dup.TokenHash = "hash-other"
	if err := b.CreateSession(t.Context(), dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreateSession: err = %v, want ErrConflict", err)
	}
	got, err := a.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(got, orig); d != "" {
		t.Errorf("after conflict: %s", d)
	}
	if _, err := a.SessionByTokenHash(t.Context(), "hash-other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token hash of the refused session: err = %v, want ErrNotFound", err)
	}
}

func testSessionByTokenHash(t *testing.T, h *harness) {
	a, b := h.two(t)
	for i := range 3 {
		mustCreateSession(t, a, newSession(fmt.Sprintf("vgs_%d", i), "alice", "", store.StateMinted, time.Duration(i)*time.Second))
	}
	for i := range 3 {
		want := fmt.Sprintf("vgs_%d", i)
		got, err := b.SessionByTokenHash(t.Context(), "hash-"+want)
		if err != nil {
			t.Fatalf("SessionByTokenHash(hash-%s): %v", want, err)
		}
		if got.ID != want {
			t.Errorf("SessionByTokenHash(hash-%s).ID = %s", want, got.ID)
		}
	}
}

func testSessionReturnsCopies(t *testing.T, h *harness) {
	s := h.handle(t)
	want := newSession("vgs_1", "alice", "", store.StateMinted, 0)
	mustCreateSession(t, s, want)
	want = newSession("vgs_1", "alice", "", store.StateMinted, 0)
	got, err := s.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	got.State = store.StateRevoked
	got.Config[0] = '['
	got.LiveSeconds = 99
	again, err := s.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(again, want); d != "" {
		t.Errorf("mutating a returned session changed the store: %s", d)
	}
}

func sessionIDs(ss []*store.Session) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

func testSessionList(t *testing.T, h *harness) {
	a, b := h.two(t)
	// Six sessions one second apart; listing is newest first.
	seed := []*store.Session{
		newSession("vgs_0", "alice", "key_a", store.StateEnded, 0),
		newSession("vgs_1", "bob", "key_a", store.StateLive, 1*time.Second),
		newSession("vgs_2", "alice", "key_b", store.StateLive, 2*time.Second),
		newSession("vgs_3", "", "", store.StateMinted, 3*time.Second),
		newSession("vgs_4", "alice", "key_a", store.StateRevoked, 4*time.Second),
		newSession("vgs_5", "bob", "key_b", store.StateMinted, 5*time.Second),
	}
	for _, s := range seed {
		mustCreateSession(t, a, s)
	}
	tests := []struct {
		name string
		f    store.SessionFilter
		want []string
	}{
		{"all", store.SessionFilter{}, []string{"vgs_5", "vgs_4", "vgs_3", "vgs_2", "vgs_1", "vgs_0"}},
		{"user", store.SessionFilter{User: "alice"}, []string{"vgs_4", "vgs_2", "vgs_0"}},
		{"app key", store.SessionFilter{AppKeyID: "key_b"}, []string{"vgs_5", "vgs_2"}},
		{"state", store.SessionFilter{State: store.StateLive}, []string{"vgs_2", "vgs_1"}},
		{"since inclusive", store.SessionFilter{Since: at(3 * time.Second)}, []string{"vgs_5", "vgs_4", "vgs_3"}},
		{"limit", store.SessionFilter{Limit: 2}, []string{"vgs_5", "vgs_4"}},
		{"user and key", store.SessionFilter{User: "alice", AppKeyID: "key_a"}, []string{"vgs_4", "vgs_0"}},
		{"user and state", store.SessionFilter{User: "bob", State: store.StateMinted}, []string{"vgs_5"}},
		{"key and since and limit", store.SessionFilter{AppKeyID: "key_a", Since: at(time.Second), Limit: 1}, []string{"vgs_4"}},
		{"user limit", store.SessionFilter{User: "alice", Limit: 2}, []string{"vgs_4", "vgs_2"}},
		{"no match", store.SessionFilter{User: "carol"}, nil},
		{"since after all", store.SessionFilter{Since: at(time.Hour)}, nil},
		{"before exclusive", store.SessionFilter{Before: at(3 * time.Second)}, []string{"vgs_2", "vgs_1", "vgs_0"}},
		{"next page", store.SessionFilter{Before: at(4 * time.Second), Limit: 2}, []string{"vgs_3", "vgs_2"}},
		{"user before", store.SessionFilter{User: "alice", Before: at(4 * time.Second)}, []string{"vgs_2", "vgs_0"}},
		{"before nanosecond", store.SessionFilter{Before: at(3*time.Second + time.Nanosecond)}, []string{"vgs_3", "vgs_2", "vgs_1", "vgs_0"}},
	}
	for _, tc := range tests {
		got, err := b.ListSessions(t.Context(), tc.f)
		if err != nil {
			t.Fatalf("%s: ListSessions: %v", tc.name, err)
		}
		if ids := sessionIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("%s: ListSessions = %v, want %v", tc.name, ids, tc.want)
		}
	}
	// Listed records are complete.
	got, err := b.ListSessions(t.Context(), store.SessionFilter{User: "bob", State: store.StateLive})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListSessions(bob, live) = %v, %v", got, err)
	}
	if d := diffSession(got[0], seed[1]); d != "" {
		t.Errorf("listed session: %s", d)
	}
}

func testSessionListDefaultLimit(t *testing.T, h *harness) {
	s := h.handle(t)
	for i := range 105 {
		mustCreateSession(t, s, newSession(fmt.Sprintf("vgs_%03d", i), "alice", "", store.StateMinted, time.Duration(i)*time.Second))
	}
	got, err := s.ListSessions(t.Context(), store.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Fatalf("ListSessions with Limit 0 returned %d sessions, want the default 100", len(got))
	}
	if got[0].ID != "vgs_104" || got[99].ID != "vgs_005" {
		t.Errorf("ListSessions = %s … %s, want vgs_104 … vgs_005", got[0].ID, got[99].ID)
	}
}

func testSessionUpdate(t *testing.T, h *harness) {
	a, b := h.two(t)
	mustCreateSession(t, a, newSession("vgs_1", "alice", "key_a", store.StateMinted, 0))
	got, err := b.UpdateSession(t.Context(), "vgs_1", func(s *store.Session) error {
		if s.State != store.StateMinted {
			return fmt.Errorf("fn saw state %q", s.State)
		}
		s.State = store.StateLive
		s.Transport = "webrtc"
		s.StartedAt = at(5 * time.Second)
		s.LiveSeconds = 1.25
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	want := newSession("vgs_1", "alice", "key_a", store.StateLive, 0)
	want.Transport = "webrtc"
	want.StartedAt = at(5 * time.Second)
	want.LiveSeconds = 1.25
	if d := diffSession(got, want); d != "" {
		t.Errorf("UpdateSession result: %s", d)
	}
	stored, err := a.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(stored, want); d != "" {
		t.Errorf("stored after UpdateSession: %s", d)
	}
	// The state filter follows the update.
	for state, wantN := range map[string]int{store.StateMinted: 0, store.StateLive: 1} {
		list, err := a.ListSessions(t.Context(), store.SessionFilter{State: state})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != wantN {
			t.Errorf("ListSessions(state %s) = %v, want %d", state, sessionIDs(list), wantN)
		}
	}
	byHash, err := a.SessionByTokenHash(t.Context(), "hash-vgs_1")
	if err != nil || byHash.State != store.StateLive {
		t.Errorf("SessionByTokenHash after update = %+v, %v", byHash, err)
	}
}

func testSessionUpdateAbort(t *testing.T, h *harness) {
	s := h.handle(t)
	want := newSession("vgs_1", "alice", "", store.StateMinted, 0)
	mustCreateSession(t, s, want)
	boom := errors.New("boom")
	_, err := s.UpdateSession(t.Context(), "vgs_1", func(s *store.Session) error {
		s.State = store.StateRevoked
		s.LiveSeconds = 42
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateSession: err = %v, want the fn's error", err)
	}
	got, err := s.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(got, newSession("vgs_1", "alice", "", store.StateMinted, 0)); d != "" {
		t.Errorf("aborted update was stored: %s", d)
	}
}

func testSessionUpdateAtomic(t *testing.T, h *harness) {
	a, b := h.two(t)
	mustCreateSession(t, a, newSession("vgs_1", "alice", "", store.StateLive, 0))
	const workers, each = 4, 15 // per handle
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b} {
		for range workers {
			wg.Go(func() {
				for range each {
					_, err := s.UpdateSession(t.Context(), "vgs_1", func(s *store.Session) error {
						s.LiveSeconds++
						return nil
					})
					if err != nil {
						t.Errorf("UpdateSession: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	got, err := a.Session(t.Context(), "vgs_1")
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(2 * workers * each); got.LiveSeconds != want {
		t.Errorf("LiveSeconds = %v after %v concurrent increments: updates were lost", got.LiveSeconds, want)
	}
}

func testRevokeUser(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	check := func(s store.Store, user string, want time.Time) {
		t.Helper()
		got, err := s.UserRevokedAt(ctx, user)
		if err != nil {
			t.Fatalf("UserRevokedAt(%s): %v", user, err)
		}
		if !got.Equal(want) {
			t.Errorf("UserRevokedAt(%s) = %v, want %v", user, got, want)
		}
	}
	check(a, "alice", time.Time{})
	if err := a.RevokeUser(ctx, "alice", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check(b, "alice", at(time.Minute))
	check(b, "bob", time.Time{})
	if err := b.RevokeUser(ctx, "alice", at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check(a, "alice", at(time.Hour))
	// An older revocation does not move the time back.
	if err := a.RevokeUser(ctx, "alice", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	check(b, "alice", at(time.Hour))
}
