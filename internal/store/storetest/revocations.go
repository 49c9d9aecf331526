package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var revocationTests = []test{
	{"AcrossHandles", testRevocationAcrossHandles},
	{"NothingBeforeSubscribe", testRevocationNothingBefore},
	{"ClosedWhenDone", testRevocationClosed},
}

// deliveryWait bounds how long a published revocation may take to arrive.
const deliveryWait = time.Second

func subscribe(t *testing.T, ctx context.Context, s store.Store) <-chan store.Revocation {
	t.Helper()
	ch, err := s.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatalf("SubscribeRevocations: %v", err)
	}
	return ch
}

func publish(t *testing.T, s store.Store, r store.Revocation) {
	t.Helper()
	if err := s.PublishRevocation(t.Context(), r); err != nil {
		t.Fatalf("PublishRevocation(%+v): %v", r, err)
	}
}

func expect(t *testing.T, ch <-chan store.Revocation, want store.Revocation) {
	t.Helper()
	got, ok := within(t.Context(), ch, deliveryWait)
	if !ok {
		t.Fatalf("revocation %+v not delivered within %v", want, deliveryWait)
	}
	if got.Kind != want.Kind || got.ID != want.ID || !got.At.Equal(want.At) {
		t.Fatalf("received %+v, want %+v", got, want)
	}
}

func testRevocationAcrossHandles(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	onB := subscribe(t, ctx, b)
	onA := subscribe(t, ctx, a)
	sent := []store.Revocation{
		{Kind: "session", ID: "vgs_1", At: now()},
		{Kind: "user", ID: "alice", At: now().Add(time.Millisecond)},
		{Kind: "app_key", ID: "key_a", At: now().Add(2 * time.Millisecond)},
	}
	for _, r := range sent {
		publish(t, a, r)
	}
	// Every subscriber, on the publishing handle or another, gets all of
	// them in order.
	for _, r := range sent {
		expect(t, onB, r)
	}
	for _, r := range sent {
		expect(t, onA, r)
	}
	r := store.Revocation{Kind: "session", ID: "vgs_2", At: now()}
	publish(t, b, r)
	expect(t, onA, r)
	expect(t, onB, r)
}

func testRevocationNothingBefore(t *testing.T, h *harness) {
	a, b := h.two(t)
	publish(t, a, store.Revocation{Kind: "session", ID: "vgs_old", At: now()})
	ch := subscribe(t, t.Context(), b)
	r := store.Revocation{Kind: "session", ID: "vgs_new", At: now()}
	publish(t, a, r)
	expect(t, ch, r) // vgs_old, published before the subscription, is not delivered
}

func testRevocationClosed(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := subscribe(t, ctx, b)
	r := store.Revocation{Kind: "user", ID: "bob", At: now()}
	publish(t, a, r)
	expect(t, ch, r)
	cancel()
	deadline := time.After(deliveryWait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("channel still open %v after ctx was cancelled", deliveryWait)
		}
	}
}
