package relay

import (
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// TestFrozenClientClosedByPing: a client that stops reading (a frozen
// phone, a dead path behind a proxy: no close, no RST) misses its pongs;
// the relay closes it within PingInterval + PingTimeout and the session
// ends, which releases its slots.
func TestFrozenClientClosedByPing(t *testing.T) {
	h := newHarness(t, &fakeUpstream{}, nil)
	h.relay.PingInterval = 50 * time.Millisecond
	h.relay.PingTimeout = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := h.dial(ctx) // never read again: pings go unanswered
	defer c.CloseNow()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatal("the frozen client's session is still served after 10 s")
	}
	rec, err := h.st.Session(ctx, h.sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State == store.StateLive {
		t.Errorf("session state %q after the frozen client was closed", rec.State)
	}
	if h.relay.LiveCount() != 0 {
		t.Errorf("LiveCount = %d, want 0", h.relay.LiveCount())
	}
}

// TestAnsweringClientKeptByPing: a client that reads (and so answers
// pings) stays connected over many ping rounds.
func TestAnsweringClientKeptByPing(t *testing.T) {
	h := newHarness(t, &fakeUpstream{}, nil)
	h.relay.PingInterval = 10 * time.Millisecond
	h.relay.PingTimeout = 5 * time.Second
	pongs := make(chan string, 64)
	h.relay.onPong = func(side string) {
		select {
		case pongs <- side:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := h.dial(ctx)
	read := make(chan struct{})
	go func() { // reads, and so answers pings, until the conn closes
		defer close(read)
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	got := map[string]int{}
	for got["client"] < 5 || got["upstream"] < 5 {
		select {
		case side := <-pongs:
			got[side]++
		case <-ctx.Done():
			t.Fatalf("pongs = %v after 10 s", got)
		}
	}
	if h.relay.LiveCount() != 1 {
		t.Fatal("an answering client was closed")
	}
	c.CloseNow()
	<-read
	h.waitServed()
}
