package simrtc

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

type sentPacket struct {
	pkt *rtp.Packet
	at  time.Time
}

type recordingWriter struct {
	mu   sync.Mutex
	sent []sentPacket
	more chan struct{}
}

func newRecordingWriter() *recordingWriter { return &recordingWriter{more: make(chan struct{}, 1000)} }

func (w *recordingWriter) WriteRTP(p *rtp.Packet) error {
	w.mu.Lock()
	w.sent = append(w.sent, sentPacket{p, time.Now()})
	w.mu.Unlock()
	w.more <- struct{}{}
	return nil
}

func (w *recordingWriter) wait(t *testing.T, n int) []sentPacket {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		w.mu.Lock()
		got := append([]sentPacket(nil), w.sent...)
		w.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-w.more:
		case <-deadline:
			t.Fatalf("got %d packets, want %d", len(got), n)
		}
	}
}

func startPlayer(t *testing.T) (*player, *recordingWriter) {
	t.Helper()
	w := newRecordingWriter()
	p := newPlayer(w, time.Now, 65534, 1000)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() { p.run(done); close(exited) }()
	t.Cleanup(func() { close(done); <-exited })
	return p, w
}

func TestPlayerPacesFramesInRealTime(t *testing.T) {
	p, w := startPlayer(t)
	// 100 ms of 24 kHz audio plus 10 ms: 6 frames, the last padded.
	p.write(pcmBytes(tone(500, 24000, 2640, 8000)))
	got := w.wait(t, 6)
	if len(got) != 6 {
		t.Fatalf("sent %d packets, want 6", len(got))
	}
	for i, s := range got {
		if len(s.pkt.Payload) != frameSamples {
			t.Errorf("packet %d: payload %d bytes, want %d", i, len(s.pkt.Payload), frameSamples)
		}
		if want := uint16(65534 + i); s.pkt.SequenceNumber != want {
			t.Errorf("packet %d: seq %d, want %d", i, s.pkt.SequenceNumber, want)
		}
		if want := uint32(1000 + 160*i); s.pkt.Timestamp != want {
			t.Errorf("packet %d: timestamp %d, want %d", i, s.pkt.Timestamp, want)
		}
		if s.pkt.Marker != (i == 0) {
			t.Errorf("packet %d: marker %v", i, s.pkt.Marker)
		}
	}
	if span := got[5].at.Sub(got[0].at); span < 90*time.Millisecond {
		t.Errorf("6 frames sent within %v, want about 100 ms (real time)", span)
	}
	last := got[5].pkt.Payload
	for i := 80; i < frameSamples; i++ {
		if last[i] != ulawSilence {
			t.Fatalf("padding byte %d = %#x, want silence", i, last[i])
		}
	}

	// After a pause the next talk spurt is marked and its timestamp jumps
	// over the pause.
	time.Sleep(100 * time.Millisecond)
	p.write(pcmBytes(tone(500, 24000, 480, 8000)))
	got = w.wait(t, 7)
	if !got[6].pkt.Marker {
		t.Error("first packet after a pause has no marker")
	}
	if jump := got[6].pkt.Timestamp - got[5].pkt.Timestamp; jump < 160*5 {
		t.Errorf("timestamp advanced %d over a 100 ms pause, want at least %d", jump, 160*5)
	}
	if got[6].pkt.SequenceNumber != got[5].pkt.SequenceNumber+1 {
		t.Error("sequence numbers must stay consecutive across pauses")
	}
}

func TestPlayerClearDropsQueuedAudio(t *testing.T) {
	p, w := startPlayer(t)
	p.write(pcmBytes(tone(500, 24000, 24000, 8000))) // 1 s
	w.wait(t, 2)
	p.clear()
	if q := p.queued(); q != 0 {
		t.Fatalf("queued after clear = %v, want 0", q)
	}
	time.Sleep(100 * time.Millisecond)
	w.mu.Lock()
	n := len(w.sent)
	w.mu.Unlock()
	if n > 4 {
		t.Errorf("%d packets sent after clear of 1 s of audio, want at most 4", n)
	}
}

func TestPlayerBridgesLateChunks(t *testing.T) {
	p, w := startPlayer(t)
	// Two 100 ms chunks, the second about 25 ms late (the fifth frame goes
	// out at 80 ms): still one continuous talk spurt.
	p.write(pcmBytes(tone(500, 24000, 2400, 8000)))
	w.wait(t, 5)
	time.Sleep(45 * time.Millisecond)
	p.write(pcmBytes(tone(500, 24000, 2400, 8000)))
	got := w.wait(t, 10)
	for i := 1; i < 10; i++ {
		if got[i].pkt.Marker {
			t.Errorf("packet %d starts a new talk spurt", i)
		}
		if d := got[i].pkt.Timestamp - got[i-1].pkt.Timestamp; d != frameSamples {
			t.Errorf("packet %d: timestamp step %d, want %d", i, d, frameSamples)
		}
	}
	if span := got[9].at.Sub(got[0].at); span > 250*time.Millisecond {
		t.Errorf("10 frames took %v, want about 200 ms (catching up after the late chunk)", span)
	}
}
