package policy

import (
	"encoding/json"
	"testing"
)

func TestFastAppend(t *testing.T) {
	for _, tc := range []struct {
		frame string
		ok    bool
		id    string
	}{
		{`{"type":"input_audio_buffer.append","audio":"AAAA"}`, true, ""},
		{` { "event_id" : "ev_1.a:b-c" , "audio":"AA+/==", "type":"input_audio_buffer.append" } `, true, "ev_1.a:b-c"},
		{`{"type":"input_audio_buffer.append","audio":""}`, true, ""},
		// everything else takes the general path
		{`{"type":"input_audio_buffer.append"}`, false, ""},
		{`{"audio":"AAAA"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA","audio":"BBBB"}`, false, ""},
		{`{"type":"input_audio_buffer.append","type":"session.update","audio":"AAAA"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AA\u0041A"}`, false, ""},
		{`{"type":"input_audio_buffer\u002eappend","audio":"AAAA"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA","extra":1}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA",}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA"} x`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA","event_id":7}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AA AA"}`, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"AAAA"`, false, ""},
		{`{"type":"input_audio_buffer.commit","audio":"AAAA"}`, false, ""},
		{`[]`, false, ""},
		{``, false, ""},
	} {
		id, ok := fastAppend([]byte(tc.frame))
		if ok != tc.ok || id != tc.id {
			t.Errorf("%s: %q %v, want %q %v", tc.frame, id, ok, tc.id, tc.ok)
		}
	}
}

// FuzzFastAppend: the fast path accepts only frames the general path
// passes as appends with the same event_id.
func FuzzFastAppend(f *testing.F) {
	for _, s := range []string{
		`{"type":"input_audio_buffer.append","audio":"AAAA","event_id":"e"}`,
		` {"audio":"","type":"input_audio_buffer.append"}`,
		`{"type":"input_audio_buffer.append","audio":"A\"A"}`,
		`{"type":"input_audio_buffer.append","audio":"AAAA","event_id":"x","event_id":"y"}`,
	} {
		f.Add([]byte(s))
	}
	general := &Firewall{Tier: DefaultTier(), Pinned: json.RawMessage(`{"type":"realtime","model":"gpt-realtime"}`)}
	f.Fuzz(func(t *testing.T, frame []byte) {
		id, ok := fastAppend(frame)
		if !ok {
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("fast path accepted invalid json %q", frame)
		}
		members, err := topLevel(frame)
		if err != nil {
			t.Fatalf("fast path accepted %q: %v", frame, err)
		}
		var typ, audio, eid string
		for k, v := range members {
			var s string
			if json.Unmarshal(v, &s) != nil {
				t.Fatalf("member %s of %q is not a string", k, frame)
			}
			switch k {
			case "type":
				typ = s
			case "audio":
				audio = s
			case "event_id":
				eid = s
			default:
				t.Fatalf("fast path accepted key %q in %q", k, frame)
			}
		}
		_ = audio
		if typ != typeAppend || eid != id {
			t.Fatalf("fast path read type %q id %q of %q; encoding/json reads %q %q", typeAppend, id, frame, typ, eid)
		}
		if d := general.Inspect(frame); d.Action != Pass || d.Type != typeAppend || d.EventID != id {
			t.Fatalf("Inspect(%q) = %+v", frame, d)
		}
	})
}
