package simrtc

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestULawKnownValues(t *testing.T) {
	tests := []struct {
		code byte
		want int16
	}{
		{0xFF, 0},
		{0x7F, 0},
		{0x80, 32124},
		{0x00, -32124},
		{0xFE, 8},
		{0x7E, -8},
	}
	for _, tt := range tests {
		if got := ulawDecode(tt.code); got != tt.want {
			t.Errorf("ulawDecode(%#x) = %d, want %d", tt.code, got, tt.want)
		}
	}
	if got := ulawEncode(0); got != ulawSilence {
		t.Errorf("ulawEncode(0) = %#x, want %#x", got, ulawSilence)
	}
	if got := ulawEncode(math.MaxInt16); got != 0x80 {
		t.Errorf("ulawEncode(max) = %#x, want 0x80", got)
	}
	if got := ulawEncode(math.MinInt16); got != 0x00 {
		t.Errorf("ulawEncode(min) = %#x, want 0x00", got)
	}
}

func TestULawRoundTrip(t *testing.T) {
	// Every code decodes to a value that encodes back to an equivalent code.
	for c := 0; c < 256; c++ {
		v := ulawDecode(byte(c))
		if got := ulawDecode(ulawEncode(v)); got != v {
			t.Fatalf("code %#x: decode(encode(%d)) = %d", c, v, got)
		}
	}
	// Quantisation error stays within half a step of the segment (~3%).
	for s := math.MinInt16; s <= math.MaxInt16; s += 7 {
		got := int(ulawDecode(ulawEncode(int16(s))))
		diff := math.Abs(float64(got - s))
		limit := math.Max(16, math.Abs(float64(s))*0.035)
		if math.Abs(float64(s)) > ulawClip {
			limit = math.Abs(float64(s)) - 32124 + 1100
		}
		if diff > limit {
			t.Fatalf("sample %d: round trip %d, error %.0f > %.0f", s, got, diff, limit)
		}
	}
}

func tone(freq, rate float64, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/rate))
	}
	return out
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func pcmSamples(b []byte) []int16 {
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

func TestUpsampler(t *testing.T) {
	in := tone(440, 8000, 8000, 10000)
	var u upsampler
	// Feed in 20 ms packets, as RTP delivers them.
	var out []byte
	for i := 0; i < len(in); i += 160 {
		out = u.process(out, in[i:i+160])
	}
	got := pcmSamples(out)
	if len(got) != 3*len(in) {
		t.Fatalf("upsampled %d samples to %d, want %d", len(in), len(got), 3*len(in))
	}
	// Every third output sample is an input sample (delayed by one).
	for i := 1; i < len(in); i++ {
		if got[3*i+2] != in[i] {
			t.Fatalf("output %d = %d, want input %d = %d", 3*i+2, got[3*i+2], i, in[i])
		}
	}
	if r, want := rms(got[300:]), 10000/math.Sqrt2; math.Abs(r-want)/want > 0.03 {
		t.Errorf("rms = %.0f, want about %.0f", r, want)
	}
}

func TestDownsamplerPassesVoiceBand(t *testing.T) {
	d := newDownsampler()
	got := d.process(nil, pcmBytes(tone(1000, 24000, 24000, 10000)))
	if len(got) != 8000 {
		t.Fatalf("got %d samples, want 8000", len(got))
	}
	if r, want := rms(got[100:]), 10000/math.Sqrt2; math.Abs(r-want)/want > 0.05 {
		t.Errorf("1 kHz rms = %.0f, want about %.0f", r, want)
	}
}

func TestDownsamplerRejectsAliases(t *testing.T) {
	d := newDownsampler()
	// 6 kHz would alias to 2 kHz at 8 kHz without the low-pass filter.
	got := d.process(nil, pcmBytes(tone(6000, 24000, 24000, 10000)))
	if r := rms(got[100:]); r > 10000/math.Sqrt2/30 {
		t.Errorf("6 kHz rms after filtering = %.0f, want under 1/30 of the input", r)
	}
}

func TestDownsamplerChunkingInvariant(t *testing.T) {
	in := pcmBytes(tone(300, 24000, 4801, 12000))
	whole := newDownsampler().process(nil, in)

	d := newDownsampler()
	var chunked []int16
	for i, sizes := 0, []int{1, 2, 3, 7, 480, 961, 1}; i < len(in); {
		n := min(sizes[i%len(sizes)], len(in)-i)
		chunked = d.process(chunked, in[i:i+n])
		i += n
	}
	if len(chunked) != len(whole) {
		t.Fatalf("chunked produced %d samples, whole %d", len(chunked), len(whole))
	}
	for i := range whole {
		if chunked[i] != whole[i] {
			t.Fatalf("sample %d: chunked %d, whole %d", i, chunked[i], whole[i])
		}
	}
}
