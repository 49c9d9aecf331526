package relay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

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

// TestShutdownLetsAnswersFinish: a response being spoken when the gateway
// shuts down finishes (no response.cancel upstream) and is metered, then
// the client gets 1001 going_away.
func TestShutdownLetsAnswersFinish(t *testing.T) {
	up := &fakeUpstream{deltas: 5, deltaInterval: 50 * time.Millisecond}
	h := newHarness(t, up, nil)
	ctx, c := h.open()
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.created")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.relay.Shutdown(sctx) }()
	done := c.until(ctx, "response.done")
	if !strings.Contains(string(done), `"completed"`) {
		t.Errorf("response.done during the drain: %s", done)
	}
	ce, _ := c.closed(ctx)
	if ce.Code != websocket.StatusGoingAway {
		t.Errorf("close = %v, want 1001", ce)
	}
	if err := <-errc; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	h.waitServed()
	for _, ev := range up.Events() {
		if ev == "response.cancel" {
			t.Error("the answer was cancelled upstream during the drain")
		}
	}
	h.assertLedgerMatches(1)
}
