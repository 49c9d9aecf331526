package sim

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestG711RoundTrip(t *testing.T) {
	for _, v := range []int16{0, 1, -1, 100, -100, 1000, -1000, 12345, -12345, 32767, -32768} {
		mu := float64(mulawTable[linearToMulaw(v)])
		al := float64(alawTable[linearToAlaw(v)])
		tol := math.Max(16, math.Abs(float64(v))/16) // G.711 keeps ~4 bits of mantissa
		if math.Abs(mu-float64(v)) > tol || math.Abs(al-float64(v)) > tol {
			t.Errorf("%d: μ-law → %v, A-law → %v", v, mu, al)
		}
	}
}

func TestTranscodeKeepsEnergyAndDuration(t *testing.T) {
	pcm := speech(100)
	for _, f := range []string{"pcmu", "pcma"} {
		g := transcodePCM(pcm, f)
		if len(g) != 8*100 {
			t.Errorf("%s: %d bytes for 100 ms", f, len(g))
		}
		var in, out []float64
		m := energyMeter{format: "pcm"}
		m.feed(pcm, func(r float64) { in = append(in, r) })
		m2 := energyMeter{format: f}
		m2.feed(g, func(r float64) { out = append(out, r) })
		if len(in) != len(out) || len(in) != 5 {
			t.Fatalf("%s: %d vs %d frames", f, len(in), len(out))
		}
		for i := range in {
			if math.Abs(in[i]-out[i]) > 0.02 {
				t.Errorf("%s frame %d: rms %.3f vs %.3f", f, i, in[i], out[i])
			}
		}
	}
	_ = binary.LittleEndian
}
