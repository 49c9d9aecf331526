package sim

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"sync"
)

// chunkMs is the duration of one output audio delta (9,600 bytes of PCM16;
// upstream delta sizes vary and reach tens of kilobytes).
const chunkMs = 200

// bankChunks is how many distinct chunks are precomputed per format; output
// cycles through them (4 s of audio).
const bankChunks = 20

// audioBank holds the simulator's output voice, computed once per process:
// raw PCM16 24 kHz chunks (for WebRTC transports) and base64 deltas for
// each wire format, so emitting a delta costs no synthesis or encoding.
type audioBank struct {
	pcm [bankChunks][]byte
	b64 map[string]*[bankChunks]string // format → base64 chunks
}

var (
	bankOnce sync.Once
	bank     *audioBank
)

func sharedAudio() *audioBank {
	bankOnce.Do(func() { bank = newAudioBank() })
	return bank
}

// newAudioBank synthesises a voice-like signal: a 150 Hz fundamental with
// two harmonics, amplitude-modulated at 4 syllables per second.
func newAudioBank() *audioBank {
	b := &audioBank{b64: map[string]*[bankChunks]string{}}
	const rate = 24000
	per := rate * chunkMs / 1000
	pcm8 := map[string]*[bankChunks]string{"pcm": {}, "pcmu": {}, "pcma": {}}
	for c := 0; c < bankChunks; c++ {
		raw := make([]byte, per*2)
		mu := make([]byte, per/3)
		al := make([]byte, per/3)
		for i := 0; i < per; i++ {
			t := float64(c*per+i) / rate
			env := 0.2 + 0.8*math.Abs(math.Sin(math.Pi*4*t))
			v := env * (0.6*math.Sin(2*math.Pi*150*t) + 0.3*math.Sin(2*math.Pi*300*t) + 0.1*math.Sin(2*math.Pi*450*t))
			s := int16(v * 0.3 * 32767)
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
			if i%3 == 0 { // 24 kHz → 8 kHz by decimation; the signal is far below 4 kHz
				mu[i/3] = linearToMulaw(s)
				al[i/3] = linearToAlaw(s)
			}
		}
		b.pcm[c] = raw
		pcm8["pcm"][c] = base64.StdEncoding.EncodeToString(raw)
		pcm8["pcmu"][c] = base64.StdEncoding.EncodeToString(mu)
		pcm8["pcma"][c] = base64.StdEncoding.EncodeToString(al)
	}
	b.b64 = pcm8
	return b
}

// transcodePCM converts PCM16 24 kHz to 8 kHz G.711 ("pcmu" or "pcma") by
// decimation (input speech is assumed band-limited, as the simulator only
// measures its energy).
func transcodePCM(pcm []byte, to string) []byte {
	out := make([]byte, 0, len(pcm)/6)
	for i := 0; i+1 < len(pcm); i += 6 {
		s := int16(binary.LittleEndian.Uint16(pcm[i:]))
		if to == "pcmu" {
			out = append(out, linearToMulaw(s))
		} else {
			out = append(out, linearToAlaw(s))
		}
	}
	return out
}

// bytesPerMs is the input audio rate of a format.
func bytesPerMs(format string) int {
	if format == "pcm" {
		return 48
	}
	return 8
}

// MuLaw and ALaw encode one 16-bit sample in G.711 μ-law and A-law, for
// clients (and tests) that synthesize telephony audio.
func MuLaw(s int16) byte { return linearToMulaw(s) }
func ALaw(s int16) byte  { return linearToAlaw(s) }

// linearToMulaw is G.711 μ-law encoding.
func linearToMulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int(s)
	sign := 0
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// linearToAlaw is G.711 A-law encoding.
func linearToAlaw(s int16) byte {
	x := int(s) >> 3 // 13-bit
	sign := 0x80
	if x < 0 {
		x = -x - 1
		sign = 0
	}
	var out int
	if x < 32 {
		out = x >> 1
	} else {
		exp := 1
		for v := x >> 5; v > 1; v >>= 1 {
			exp++
		}
		if exp > 7 {
			exp, x = 7, 0xfff
		}
		out = exp<<4 | (x>>exp)&0x0f
	}
	return byte(out|sign) ^ 0x55
}

var mulawTable, alawTable [256]int16

func init() {
	for i := 0; i < 256; i++ {
		u := ^byte(i)
		t := (int(u&0x0f)<<3 + 0x84) << ((u & 0x70) >> 4)
		if u&0x80 != 0 {
			mulawTable[i] = int16(0x84 - t)
		} else {
			mulawTable[i] = int16(t - 0x84)
		}
		a := byte(i) ^ 0x55
		seg := int(a&0x70) >> 4
		v := int(a&0x0f) << 4
		switch seg {
		case 0:
			v += 8
		case 1:
			v += 0x108
		default:
			v = (v + 0x108) << (seg - 1)
		}
		if a&0x80 != 0 {
			alawTable[i] = int16(v)
		} else {
			alawTable[i] = int16(-v)
		}
	}
}

// energyMeter turns input audio into 20 ms frames and reports whether each
// frame is speech: its RMS is above a level derived from the VAD threshold
// (threshold 0.5 ↔ RMS 2% of full scale, proportionally).
type energyMeter struct {
	format  string
	n       int   // samples in the current frame
	sumSq   int64 // Σ sample² over the current frame, samples as int16
	frameMs int
}

// feed decodes audio and calls frame once per completed 20 ms frame.
//
// Squares are summed as integers: with samples scaled to s/32768 every
// square is a multiple of 2⁻³⁰ below 1 and a frame has at most 480 of
// them, so a float64 sum would be exact too and the RMS is the same.
func (m *energyMeter) feed(audio []byte, frame func(rms float64)) {
	per := 480 // 20 ms at 24 kHz
	if m.format != "pcm" {
		per = 160
	}
	table := &alawTable
	if m.format == "pcmu" {
		table = &mulawTable
	}
	for {
		var take int
		sum := m.sumSq
		if m.format == "pcm" {
			take = min(len(audio)/2, per-m.n) // a trailing odd byte is ignored
			sum += sumSquaresPCM(audio[:2*take])
			audio = audio[2*take:]
		} else {
			take = min(len(audio), per-m.n)
			for _, b := range audio[:take] {
				s := int64(table[b])
				sum += s * s
			}
			audio = audio[take:]
		}
		if take == 0 {
			return
		}
		m.n += take
		m.sumSq = sum
		if m.n == per {
			frame(math.Sqrt(float64(m.sumSq) / (1 << 30) / float64(per)))
			m.n, m.sumSq = 0, 0
		}
	}
}

// sumSquaresPCM is Σ s² over the PCM16 little-endian samples of b (len(b)
// even), four samples per step.
func sumSquaresPCM(b []byte) int64 {
	var a0, a1 int64
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		s0, s1 := int64(int16(v)), int64(int16(v>>16))
		s2, s3 := int64(int16(v>>32)), int64(int16(v>>48))
		a0 += s0*s0 + s1*s1
		a1 += s2*s2 + s3*s3
		b = b[8:]
	}
	for ; len(b) >= 2; b = b[2:] {
		s := int64(int16(binary.LittleEndian.Uint16(b)))
		a0 += s * s
	}
	return a0 + a1
}

// speechRMS is the RMS above which a frame counts as speech.
func speechRMS(threshold float64) float64 { return threshold * 0.04 }
