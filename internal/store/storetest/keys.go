package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var keyTests = []test{
	{"CreateGetList", testKeyCreateGetList},
	{"NotFound", testKeyNotFound},
	{"Conflict", testKeyConflict},
	{"Revoke", testKeyRevoke},
}

func newKey(id string, tiers []string, created time.Duration) *store.AppKey {
	return &store.AppKey{
		ID:        id,
		Hash:      "keyhash-" + id,
		Hint:      "vgk_…" + id[len(id)-2:],
		Name:      "app " + id,
		Tiers:     tiers,
		CreatedAt: at(created),
	}
}

func diffKey(got, want *store.AppKey) string {
	if got == nil {
		return "got nil key"
	}
	var d []string
	if got.ID != want.ID || got.Hash != want.Hash || got.Hint != want.Hint || got.Name != want.Name {
		d = append(d, fmt.Sprintf("ids = %q %q %q %q, want %q %q %q %q",
			got.ID, got.Hash, got.Hint, got.Name, want.ID, want.Hash, want.Hint, want.Name))
	}
	if !slices.Equal(got.Tiers, want.Tiers) {
		d = append(d, fmt.Sprintf("Tiers = %q, want %q", got.Tiers, want.Tiers))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.RevokedAt.Equal(want.RevokedAt) {
		d = append(d, fmt.Sprintf("RevokedAt = %v, want %v", got.RevokedAt, want.RevokedAt))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func mustCreateKey(t *testing.T, s store.Store, k *store.AppKey) {
	t.Helper()
	if err := s.CreateKey(t.Context(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
}

func testKeyCreateGetList(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	keys := []*store.AppKey{
		newKey("key_01", []string{"free", "pro"}, 0),
		newKey("key_02", nil, time.Second),
		newKey("key_03", []string{"free"}, 2*time.Second),
	}
	for _, k := range keys {
		mustCreateKey(t, a, k)
	}
	for _, want := range keys {
		got, err := b.Key(ctx, want.ID)
		if err != nil {
			t.Fatalf("Key(%s): %v", want.ID, err)
		}
		if d := diffKey(got, want); d != "" {
			t.Errorf("Key(%s): %s", want.ID, d)
		}
		got, err = b.KeyByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("KeyByHash(%s): %v", want.Hash, err)
		}
		if d := diffKey(got, want); d != "" {
			t.Errorf("KeyByHash(%s): %s", want.Hash, d)
		}
	}
	list, err := b.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(keys) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(list), len(keys))
	}
	slices.SortFunc(list, func(x, y *store.AppKey) int { return x.CreatedAt.Compare(y.CreatedAt) })
	for i, want := range keys {
		if d := diffKey(list[i], want); d != "" {
			t.Errorf("ListKeys[%d]: %s", i, d)
		}
	}
	// Returned keys are copies.
	list[0].Tiers[0] = "enterprise"
	got, err := a.Key(ctx, "key_01")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tiers[0] != "free" {
		t.Errorf("mutating a listed key changed the store: Tiers = %q", got.Tiers)
	}
}

func testKeyNotFound(t *testing.T, h *harness) {
	s := h.handle(t)
	ctx := t.Context()
	mustCreateKey(t, s, newKey("key_01", nil, 0))
	if _, err := s.Key(ctx, "key_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Key: err = %v, want ErrNotFound", err)
	}
	if _, err := s.KeyByHash(ctx, "keyhash-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyByHash: err = %v, want ErrNotFound", err)
	}
	if err := s.RevokeKey(ctx, "key_missing", at(0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey: err = %v, want ErrNotFound", err)
	}
	list, err := s.ListKeys(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("ListKeys = %d keys, %v; want 1", len(list), err)
	}
}

func testKeyConflict(t *testing.T, h *harness) {
	a, b := h.two(t)
	orig := newKey("key_01", []string{"free"}, 0)
	mustCreateKey(t, a, orig)
	dup := newKey("key_01", []string{"pro"}, time.Hour)
	dup.Hash = "keyhash-other"
	if err := b.CreateKey(t.Context(), dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreateKey: err = %v, want ErrConflict", err)
	}
	got, err := a.Key(t.Context(), "key_01")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKey(got, orig); d != "" {
		t.Errorf("after conflict: %s", d)
	}
	if _, err := a.KeyByHash(t.Context(), "keyhash-other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("hash of the refused key: err = %v, want ErrNotFound", err)
	}
}

func testKeyRevoke(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	mustCreateKey(t, a, newKey("key_01", []string{"free"}, 0))
	mustCreateKey(t, a, newKey("key_02", nil, time.Second))
	if err := b.RevokeKey(ctx, "key_01", at(time.Minute)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	want := newKey("key_01", []string{"free"}, 0)
	want.RevokedAt = at(time.Minute)
	for name, get := range map[string]func() (*store.AppKey, error){
		"Key":       func() (*store.AppKey, error) { return a.Key(ctx, "key_01") },
		"KeyByHash": func() (*store.AppKey, error) { return a.KeyByHash(ctx, "keyhash-key_01") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := diffKey(got, want); d != "" {
			t.Errorf("%s after revoke: %s", name, d)
		}
	}
	other, err := a.Key(ctx, "key_02")
	if err != nil || !other.RevokedAt.IsZero() {
		t.Errorf("revoking key_01 touched key_02: %+v, %v", other, err)
	}
	list, err := a.ListKeys(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListKeys after revoke = %d keys, %v; revoked keys stay listed", len(list), err)
	}
}
