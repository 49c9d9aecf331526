package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

func TestParseAppend(t *testing.T) {
	pcm := []byte{1, 2, 3, 4, 5}
	b64 := base64.StdEncoding.EncodeToString(pcm)
	cases := []struct {
		in  string
		ok  bool
		eid string
	}{
		{`{"type":"input_audio_buffer.append","audio":"` + b64 + `"}`, true, ""},
		{`{"type":"input_audio_buffer.append","event_id":"e1","audio":"` + b64 + `"}`, true, "e1"},
		{`{"type":"input_audio_buffer.append","audio":"` + b64 + `","event_id":"e2"}`, true, "e2"},
		{`{"type":"input_audio_buffer.append", "audio":"` + b64 + `"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AQ\/D"}`, false, ""},
		{`{"type":"input_audio_buffer.append","x":1,"audio":"` + b64 + `"}`, false, ""},
		{`{"type":"input_audio_buffer.append"}`, false, ""},
		{`{"type":"input_audio_buffer.appendx","audio":"` + b64 + `"}`, false, ""},
		{`{"audio":"` + b64 + `","type":"input_audio_buffer.append"}`, true, ""},
		{`{"audio":"` + b64 + `","type":"input_audio_buffer.append","type":"x"}`, false, ""},
		{`{"audio":"` + b64 + `","type":"response.create"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"!!!"}`, false, ""},
	}
	for _, tc := range cases {
		audio, eid, ok := parseAppend([]byte(tc.in))
		if ok != tc.ok || eid != tc.eid || ok && !bytes.Equal(audio, pcm) {
			t.Errorf("parseAppend(%s) = %v %q %v", tc.in, audio, eid, ok)
		}
		if ok { // the fast path agrees with encoding/json
			var m struct {
				EventID string `json:"event_id"`
				Audio   []byte `json:"audio"`
			}
			if err := json.Unmarshal([]byte(tc.in), &m); err != nil || !bytes.Equal(m.Audio, audio) || m.EventID != eid {
				t.Errorf("json disagrees on %s: %v", tc.in, err)
			}
		}
	}
}

func FuzzParseAppend(f *testing.F) {
	f.Add([]byte(`{"type":"input_audio_buffer.append","audio":"AQID"}`))
	f.Add([]byte(`{"type":"input_audio_buffer.append","event_id":"x","audio":"AQID"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		audio, eid, ok := parseAppend(b)
		if !ok {
			return
		}
		var m struct {
			Type    string `json:"type"`
			EventID string `json:"event_id"`
			Audio   []byte `json:"audio"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("fast path accepted invalid JSON %q: %v", b, err)
		}
		if m.Type != "input_audio_buffer.append" || m.EventID != eid || !bytes.Equal(m.Audio, audio) {
			t.Fatalf("fast path differs on %q", b)
		}
	})
}
