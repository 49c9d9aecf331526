package relay

import (
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/store"
)

// TestNoGoroutineLeak runs the main endings and checks that the goroutine
// count returns to its baseline once the servers are closed.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Run("normal", func(t *testing.T) {
		h := newHarness(t, &fakeUpstream{deltas: 2}, nil)
		ctx, c := h.open()
		c.send(ctx, `{"type":"response.create"}`)
		c.until(ctx, "response.done")
		_ = c.c.Close(websocket.StatusNormalClosure, "")
		h.waitServed()
	})
	t.Run("revoked mid-response", func(t *testing.T) {
		h := newHarness(t, &fakeUpstream{deltas: 1000, deltaInterval: 2 * time.Millisecond}, nil)
		ctx, c := h.open()
		c.send(ctx, `{"type":"response.create"}`)
		c.until(ctx, "response.output_audio.delta")
		h.relay.CloseSessions(func(*store.Session) bool { return true }, websocket.StatusPolicyViolation, "session_revoked", "revoked")
		c.closed(ctx)
		h.waitServed()
	})
	t.Run("upstream drop", func(t *testing.T) {
		h := newHarness(t, &fakeUpstream{deltas: 2, dropMid: true}, nil)
		ctx, c := h.open()
		c.send(ctx, `{"type":"response.create"}`)
		c.closed(ctx)
		h.waitServed()
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, baseline %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
