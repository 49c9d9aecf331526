package simrtc

// G.711 μ-law (PCMU) as specified by ITU-T G.711: 14-bit linear samples are
// biased, split into a 3-bit segment and a 4-bit mantissa, and inverted.

const (
	ulawBias = 0x84 // 132: added before finding the segment.
	ulawClip = 32635
	// ulawSilence is the μ-law code of a zero sample; it pads short frames.
	ulawSilence = 0xFF
)

// ulawDecodeTable maps every μ-law byte to its 16-bit linear value.
var ulawDecodeTable = func() (t [256]int16) {
	for i := range t {
		u := ^byte(i)
		sign := u & 0x80
		exponent := (u >> 4) & 0x07
		mantissa := int32(u & 0x0F)
		sample := ((mantissa << 3) + ulawBias) << exponent
		sample -= ulawBias
		if sign != 0 {
			sample = -sample
		}
		t[i] = int16(sample)
	}
	return t
}()

// ulawDecode returns the linear value of one μ-law byte.
func ulawDecode(u byte) int16 { return ulawDecodeTable[u] }

// ulawEncode returns the μ-law byte of one linear 16-bit sample.
func ulawEncode(sample int16) byte {
	s := int32(sample)
	var sign byte
	if s < 0 {
		s = -s
		sign = 0x80
	}
	if s > ulawClip {
		s = ulawClip
	}
	s += ulawBias
	exponent := byte(7)
	for mask := int32(0x4000); s&mask == 0 && exponent > 0; mask >>= 1 {
		exponent--
	}
	mantissa := byte(s>>(exponent+3)) & 0x0F
	return ^(sign | exponent<<4 | mantissa)
}

// decodeULaw appends the linear samples of μ-law payload to dst.
func decodeULaw(dst []int16, payload []byte) []int16 {
	for _, u := range payload {
		dst = append(dst, ulawDecodeTable[u])
	}
	return dst
}

// encodeULaw appends the μ-law bytes of samples to dst.
func encodeULaw(dst []byte, samples []int16) []byte {
	for _, s := range samples {
		dst = append(dst, ulawEncode(s))
	}
	return dst
}
