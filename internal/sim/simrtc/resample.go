package simrtc

import (
	"encoding/binary"
	"math"
)

// The simulator's sessions speak PCM16 at 24 kHz; PCMU media runs at 8 kHz.
// Both converters keep state across chunks so that chunk boundaries (20 ms
// RTP packets in, arbitrary WriteAudio sizes out) do not click.

const resampleFactor = 3 // 24000 / 8000

// upsampler converts 8 kHz samples to 24 kHz PCM16 by linear interpolation
// between consecutive input samples. It delays the signal by one input
// sample (125 µs). Interpolation images above 4 kHz are faint, and the
// engine only looks at the energy of the input.
type upsampler struct {
	prev int16
}

// process appends the 24 kHz little-endian PCM16 bytes for in to dst.
func (u *upsampler) process(dst []byte, in []int16) []byte {
	for _, x := range in {
		p, d := int32(u.prev), int32(x)-int32(u.prev)
		for k := int32(1); k <= resampleFactor; k++ {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(int16(p+d*k/resampleFactor)))
		}
		u.prev = x
	}
	return dst
}

// lowpassTaps is a 31-tap Hamming-windowed sinc low-pass filter with a
// 3.4 kHz cutoff at 24 kHz, in Q15, used before keeping one sample in three.
var lowpassTaps = func() []int32 {
	const n, fs, fc = 31, 24000.0, 3400.0
	taps := make([]float64, n)
	var sum float64
	for i := range taps {
		m := float64(i) - (n-1)/2.0
		x := 2 * fc / fs
		v := x
		if m != 0 {
			v = math.Sin(math.Pi*x*m) / (math.Pi * m)
		}
		v *= 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/(n-1))
		taps[i] = v
		sum += v
	}
	q := make([]int32, n)
	for i, v := range taps {
		q[i] = int32(math.Round(v / sum * (1 << 15)))
	}
	return q
}()

// downsampler converts 24 kHz PCM16 to 8 kHz samples: low-pass filter, then
// keep every third sample.
type downsampler struct {
	// hist holds the last len(lowpassTaps)-1 input samples.
	hist []int16
	// skip is how many input samples to consume before the next output.
	skip int
	// odd holds a byte left over from an odd-length chunk.
	odd    []byte
	buf    []int16
	parsed []int16
}

func newDownsampler() *downsampler {
	return &downsampler{hist: make([]int16, len(lowpassTaps)-1)}
}

// process appends the 8 kHz samples for the PCM16 little-endian bytes pcm to
// dst.
func (d *downsampler) process(dst []int16, pcm []byte) []int16 {
	if len(d.odd) > 0 && len(pcm) > 0 {
		pcm = append(append([]byte(nil), d.odd...), pcm...)
		d.odd = d.odd[:0]
	}
	if len(pcm)%2 == 1 {
		d.odd = append(d.odd[:0], pcm[len(pcm)-1])
		pcm = pcm[:len(pcm)-1]
	}
	d.parsed = d.parsed[:0]
	for i := 0; i+1 < len(pcm); i += 2 {
		d.parsed = append(d.parsed, int16(binary.LittleEndian.Uint16(pcm[i:])))
	}
	h := len(d.hist)
	d.buf = append(append(d.buf[:0], d.hist...), d.parsed...)
	i := h + d.skip
	for ; i < len(d.buf); i += resampleFactor {
		var acc int64
		for k, t := range lowpassTaps {
			acc += int64(t) * int64(d.buf[i-k])
		}
		acc >>= 15
		dst = append(dst, clamp16(acc))
	}
	d.skip = i - len(d.buf)
	copy(d.hist, d.buf[len(d.buf)-h:])
	return dst
}

// reset forgets the filter state, as after a barge-in.
func (d *downsampler) reset() {
	clear(d.hist)
	d.skip = 0
	d.odd = d.odd[:0]
}

func clamp16(v int64) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}
