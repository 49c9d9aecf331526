package simrtc

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

const (
	// frameDuration is the audio carried by one outgoing RTP packet.
	frameDuration = 20 * time.Millisecond
	// frameSamples is the number of 8 kHz PCMU samples (= bytes) in a frame.
	frameSamples = 160
	// maxQueued caps the audio waiting to be played: ten minutes of PCMU.
	maxQueued = 10 * 60 * 8000
	// maxLag is how far the pacer may fall behind before it stops catching
	// up in a burst and restarts its clock (after a stall of the process).
	maxLag = 200 * time.Millisecond
	// underrunGrace is how long the pacer keeps a talk spurt going when it
	// runs out of audio, waiting for the next chunk.
	underrunGrace = 60 * time.Millisecond
)

// rtpWriter is the part of *webrtc.TrackLocalStaticRTP the player uses.
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// player turns 24 kHz PCM16 into PCMU RTP packets of 20 ms sent in real
// time. It sends nothing while it has nothing to play (discontinuous
// transmission, as a codec with DTX would): the RTP timestamp jumps over the
// pause and the first packet of each talk spurt carries the marker bit
// (RFC 3551 §4.1), so receivers' jitter buffers see a correct timeline.
type player struct {
	out rtpWriter
	now func() time.Time

	wake chan struct{} // capacity 1: "the queue is no longer empty"

	mu      sync.Mutex
	queue   []byte // PCMU bytes waiting to be sent
	down    *downsampler
	samples []int16

	// Owned by run.
	seq       uint16
	timestamp uint32
	lastEnd   time.Time // wall time at which the last sent frame ends
}

func newPlayer(out rtpWriter, now func() time.Time, seq uint16, timestamp uint32) *player {
	return &player{
		out:       out,
		now:       now,
		wake:      make(chan struct{}, 1),
		down:      newDownsampler(),
		seq:       seq,
		timestamp: timestamp,
	}
}

// write queues pcm (PCM16 24 kHz little-endian) for playing. It reports
// false when the queue is full and the audio was dropped.
func (p *player) write(pcm []byte) bool {
	p.mu.Lock()
	p.samples = p.down.process(p.samples[:0], pcm)
	ok := len(p.queue)+len(p.samples) <= maxQueued
	if ok {
		p.queue = encodeULaw(p.queue, p.samples)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return ok
}

// clear drops every queued sample.
func (p *player) clear() {
	p.mu.Lock()
	p.queue = p.queue[:0]
	p.down.reset()
	p.mu.Unlock()
}

// queued returns the playing time still queued.
func (p *player) queued() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Duration(len(p.queue)) * time.Second / 8000
}

// pop removes the next frame, padding a short last frame with silence.
func (p *player) pop() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return nil, false
	}
	frame := make([]byte, frameSamples)
	n := copy(frame, p.queue)
	for i := n; i < frameSamples; i++ {
		frame[i] = ulawSilence
	}
	rest := copy(p.queue, p.queue[n:])
	p.queue = p.queue[:rest]
	return frame, true
}

// run sends queued audio until done is closed.
func (p *player) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var next time.Time // zero while idle
	for {
		if next.IsZero() {
			select {
			case <-p.wake:
			case <-done:
				return
			}
			next = p.now()
		} else if wait := next.Sub(p.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-done:
				return
			}
		}

		frame, ok := p.pop()
		if !ok {
			switch p.awaitMore(timer, done) {
			case awaitDone:
				return
			case awaitIdle:
				next = time.Time{}
			}
			// awaitMore: keep the media clock; the late frame goes out at
			// once and the following ones catch up with the schedule.
			continue
		}
		p.send(frame, next)
		next = next.Add(frameDuration)
		if now := p.now(); now.Sub(next) > maxLag {
			next = now
		}
	}
}

type awaitResult int

const (
	awaitMore awaitResult = iota
	awaitIdle
	awaitDone
)

// awaitMore waits up to underrunGrace for more audio after the queue ran
// dry mid-spurt: the engine writes its audio in real time, so the next chunk
// is often a few milliseconds late, and that must not cut the talk spurt.
func (p *player) awaitMore(timer *time.Timer, done <-chan struct{}) awaitResult {
	timer.Reset(underrunGrace)
	defer timer.Stop()
	select {
	case <-p.wake:
		return awaitMore
	case <-timer.C:
		return awaitIdle
	case <-done:
		return awaitDone
	}
}

// send writes one frame that starts playing at start.
func (p *player) send(frame []byte, start time.Time) {
	marker := false
	if p.lastEnd.IsZero() || start.Sub(p.lastEnd) >= frameDuration {
		marker = true
		if !p.lastEnd.IsZero() {
			// Advance the media clock over the pause, in whole frames.
			gap := start.Sub(p.lastEnd) / frameDuration
			p.timestamp += uint32(gap) * frameSamples
		}
	}
	pkt := &rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         marker,
			SequenceNumber: p.seq,
			Timestamp:      p.timestamp,
		},
		Payload: frame,
	}
	// Errors mean the peer connection is closing; the call notices that
	// through its state callbacks, so the packet is simply lost.
	_ = p.out.WriteRTP(pkt)
	p.seq++
	p.timestamp += frameSamples
	p.lastEnd = start.Add(frameDuration)
}
