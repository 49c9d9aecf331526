package testenv

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// SpeechWAV writes a 16 kHz mono PCM16 WAV file into dir for a browser's
// fake microphone (Chromium's --use-file-for-fake-audio-capture, which
// loops it): leadMs of silence, speechMs of a speech-like tone (200 Hz with
// a 4 Hz swell, loud enough for energy-based turn detection), then tailMs
// of silence. It returns the file's path.
func SpeechWAV(t testing.TB, dir string, leadMs, speechMs, tailMs int) string {
	t.Helper()
	const rate = 16000
	n := (leadMs + speechMs + tailMs) * rate / 1000
	pcm := make([]byte, 2*n)
	for i := range n {
		var s int16
		if ms := i * 1000 / rate; ms >= leadMs && ms < leadMs+speechMs {
			tt := float64(i) / rate
			s = int16(12000 * math.Sin(2*math.Pi*200*tt) * (0.6 + 0.4*math.Sin(2*math.Pi*4*tt)))
		}
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
	}
	hdr := make([]byte, 44)
	copy(hdr, "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(pcm)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1) // PCM
	binary.LittleEndian.PutUint16(hdr[22:], 1) // mono
	binary.LittleEndian.PutUint32(hdr[24:], rate)
	binary.LittleEndian.PutUint32(hdr[28:], rate*2)
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(pcm)))
	path := filepath.Join(dir, "speech.wav")
	if err := os.WriteFile(path, append(hdr, pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Chromium is the path of Debian's chromium, which the browser tests
// drive; it fails the test when it is missing (scripts/test.sh installs
// it).
func Chromium(t testing.TB) string {
	t.Helper()
	const path = "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("browser tests need Debian's chromium at %s (scripts/test.sh installs it): %v", path, err)
	}
	return path
}
