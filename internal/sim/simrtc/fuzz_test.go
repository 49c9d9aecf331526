package simrtc

import (
	"strings"
	"testing"
)

// FuzzCheckOffer feeds arbitrary offers to the validation that runs before
// pion sees them: it must never panic, and what it accepts must have a data
// channel section.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:0 PCMU/8000\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	f.Add("v=0\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		if _, err := checkOffer(offer); err == nil && !strings.Contains(offer, "m=application") {
			t.Fatalf("accepted an offer without a data channel: %q", offer)
		}
	})
}
