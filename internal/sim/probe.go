package sim

import (
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/realtime"
)

// Probe timestamps events so that a benchmark can measure the one-way
// latency of a relay in front of the simulator (cmd/vgbench). It changes
// no event's shape, only event_id values, and costs nothing when unset.
type Probe struct {
	// ClientAppend, when non-nil, is called with the event_id of every
	// input_audio_buffer.append as the session handles it (the sender
	// puts its send time in it). It must be fast and safe for concurrent
	// use: every session calls it from its own goroutine.
	ClientAppend func(eventID []byte)
	// StampDeltas makes the event_id of every output audio delta
	// "event_t" followed by the Unix time in nanoseconds at which the
	// delta was due (real-time pace: the response's start plus the
	// chunks before it, so a late delta shows its whole delay) or built
	// (fast pace).
	StampDeltas bool
}

// probeAppend reports a client append to the probe.
func (s *session) probeAppend(eventID []byte) {
	if p := s.srv.opts.Probe; p != nil && p.ClientAppend != nil {
		p.ClientAppend(eventID)
	}
}

// appendDeltaID appends the event_id of audio delta i of r.
func (s *session) appendDeltaID(b []byte, r *response, i int) []byte {
	p := s.srv.opts.Probe
	if p == nil || !p.StampDeltas {
		return append(b, realtime.NewID("event_")...)
	}
	at := time.Now()
	if s.srv.opts.Pace == PaceRealtime {
		at = r.start.Add(time.Duration(i) * chunkMs * time.Millisecond)
	}
	return strconv.AppendInt(append(b, "event_t"...), at.UnixNano(), 10)
}
