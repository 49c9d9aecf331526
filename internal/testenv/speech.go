package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SpokenWAV has espeak-ng say text into a WAV file in dir for a browser's
// fake microphone: leadMs of silence, the words, then tailMs of silence
// (Chromium loops the file; a long tail keeps the next repetition from
// barging in on the reply, since the simulator's turn detection is
// energy-based). It fails t when espeak-ng is missing (scripts/test.sh
// installs it). It returns the file's path.
func SpokenWAV(t testing.TB, dir, text string, leadMs, tailMs int) string {
	t.Helper()
	bin, err := exec.LookPath("espeak-ng")
	if err != nil {
		t.Fatalf("the browser tests need espeak-ng (Debian package espeak-ng; scripts/test.sh installs it): %v", err)
	}
	raw := filepath.Join(dir, "espeak.wav")
	if out, err := exec.Command(bin, "-w", raw, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, out)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	rate, channels, bits, pcm, err := parseWAV(b)
	if err != nil {
		t.Fatalf("espeak-ng's WAV: %v", err)
	}
	frame := channels * bits / 8
	silence := func(ms int) []byte { return make([]byte, rate*ms/1000*frame) }
	pcm = append(append(silence(leadMs), pcm...), silence(tailMs)...)
	path := filepath.Join(dir, "spoken.wav")
	if err := os.WriteFile(path, wavFile(rate, channels, bits, pcm), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseWAV reads a PCM WAV file's format and samples.
func parseWAV(b []byte) (rate, channels, bits int, pcm []byte, err error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, 0, 0, nil, errors.New("not a RIFF/WAVE file")
	}
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8 : min(len(b), p+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 || binary.LittleEndian.Uint16(body) != 1 {
				return 0, 0, 0, nil, errors.New("not PCM")
			}
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			bits = int(binary.LittleEndian.Uint16(body[14:]))
		case "data":
			pcm = body
		}
		p += 8 + size + size%2
	}
	if rate == 0 || pcm == nil {
		return 0, 0, 0, nil, fmt.Errorf("no fmt or data chunk")
	}
	return rate, channels, bits, pcm, nil
}

// wavFile wraps PCM samples in a WAV header.
func wavFile(rate, channels, bits int, pcm []byte) []byte {
	hdr := make([]byte, 44)
	copy(hdr, "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(pcm)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1) // PCM
	binary.LittleEndian.PutUint16(hdr[22:], uint16(channels))
	binary.LittleEndian.PutUint32(hdr[24:], uint32(rate))
	binary.LittleEndian.PutUint32(hdr[28:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(hdr[32:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(hdr[34:], uint16(bits))
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(pcm)))
	return append(hdr, pcm...)
}
