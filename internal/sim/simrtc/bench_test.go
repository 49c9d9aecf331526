package simrtc

import (
	"testing"
	"time"
)

// BenchmarkInputPacket measures decoding one 20 ms PCMU packet to 24 kHz
// PCM16, the per-packet cost of a caller's microphone.
func BenchmarkInputPacket(b *testing.B) {
	payload := encodeULaw(nil, tone(200, 8000, frameSamples, 8000))
	var (
		up      upsampler
		samples []int16
		out     []byte
	)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		samples = decodeULaw(samples[:0], payload)
		out = up.process(out[:0], samples)
	}
}

// BenchmarkOutputFrame measures turning 20 ms of 24 kHz PCM16 into one PCMU
// frame, the per-packet cost of the simulator's voice.
func BenchmarkOutputFrame(b *testing.B) {
	pcm := pcmBytes(tone(300, 24000, 480, 8000))
	p := newPlayer(nil, time.Now, 0, 0)
	b.SetBytes(int64(len(pcm)))
	for b.Loop() {
		p.write(pcm)
		p.pop()
	}
}
