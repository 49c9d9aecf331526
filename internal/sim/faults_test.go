package sim

import (
	"net/http"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	t.Run("refuse handshake", func(t *testing.T) {
		_, hs := startSim(t, Options{Faults: Faults{RefuseHandshake: http.StatusServiceUnavailable}})
		if _, resp, err := dial(t, wsURL(hs, ""), nil); err == nil || resp.StatusCode != 503 {
			t.Errorf("handshake = %v %v", resp, err)
		}
	})
	t.Run("drop after events", func(t *testing.T) {
		_, hs := startSim(t, Options{Pace: PaceFast, Faults: Faults{DropAfterEvents: 3}})
		c := mustDial(t, hs, "")
		c.send(map[string]any{"type": "response.create"})
		n := 1
		for {
			if _, _, err := c.c.Read(c.ctx); err != nil {
				break
			}
			n++
		}
		if n != 3 {
			t.Errorf("received %d events before the drop, want 3", n)
		}
	})
	t.Run("drop mid response", func(t *testing.T) {
		_, hs := startSim(t, Options{Pace: PaceFast, Faults: Faults{DropMidResponse: true}})
		c := mustDial(t, hs, "")
		c.send(map[string]any{"type": "response.create"})
		c.until("response.output_audio.delta")
		if _, _, err := c.c.Read(c.ctx); err == nil {
			t.Errorf("connection survived the first audio delta")
		}
	})
	t.Run("event delay", func(t *testing.T) {
		_, hs := startSim(t, Options{Pace: PaceFast, Faults: Faults{EventDelay: 150 * time.Millisecond}})
		start := time.Now()
		mustDial(t, hs, "")
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("session.created after %v, want ≥ 150ms", d)
		}
	})
}
