package policy

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestToBeta(t *testing.T) {
	ga := `{"type":"realtime","model":"gpt-realtime","instructions":"hi","output_modalities":["audio"],"max_output_tokens":512,
		"audio":{"input":{"format":{"type":"audio/pcmu"},"transcription":{"model":"whisper-1"},"noise_reduction":null,"turn_detection":{"type":"semantic_vad"}},
		"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1.1}},
		"tools":[],"tool_choice":"auto","tracing":"auto","truncation":"auto","prompt":null,"include":null}`
	got, err := ToBeta(json.RawMessage(ga))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input_audio_format":"g711_ulaw","input_audio_noise_reduction":null,"input_audio_transcription":{"model":"whisper-1"},"instructions":"hi","max_response_output_tokens":512,"modalities":["audio","text"],"model":"gpt-realtime","output_audio_format":"pcm16","speed":1.1,"tool_choice":"auto","tools":[],"tracing":"auto","turn_detection":{"type":"semantic_vad"},"voice":"marin"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := ToBeta(json.RawMessage(`[]`)); err == nil {
		t.Fatal("ToBeta accepted an array")
	}
}

func TestPinnedUpdate(t *testing.T) {
	pinned := json.RawMessage(`{"model":"gpt-realtime","type":"realtime","audio":{"output":{"voice":"marin"}}}`)
	got, err := PinnedUpdate(pinned, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"session.update","event_id":"event_vg_pinned_config","session":{"model":"gpt-realtime","type":"realtime","audio":{"output":{"voice":"marin"}}}}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got, err = PinnedUpdate(pinned, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"session.update","event_id":"event_vg_pinned_config","session":{"model":"gpt-realtime","voice":"marin"}}`; string(got) != want {
		t.Fatalf("beta: got %s", got)
	}
	// The pinned update passes the session's own firewall.
	fw := &Firewall{Tier: DefaultTier(), Pinned: pinned}
	if d := fw.Inspect(got); d.Action != Refuse {
		// got is the beta form; a GA firewall must refuse it (no session.type).
		t.Fatalf("GA firewall passed a beta update: %+v", d)
	}
	ga, _ := PinnedUpdate(pinned, false)
	if d := fw.Inspect(ga); d.Action != Pass {
		t.Fatalf("pinned update refused by its own firewall: %+v", d)
	}
	if _, err := PinnedUpdate(json.RawMessage(`{`), false); err == nil {
		t.Fatal("PinnedUpdate accepted broken json")
	}
}

// FuzzCheckJSON: checkJSON accepts only what encoding/json accepts as one
// value, and refuses valid JSON only for a repeated key.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `[{"a":{"b":1,"b":2}}]`, `1 2`, `{"a":[1,{"a":1}],"b":{"a":1}}`, `"x"`, ` {} `, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON(b)
		valid := json.Valid(b)
		if err == nil && !valid {
			t.Fatalf("checkJSON accepted invalid %q", b)
		}
		if err != nil && valid && !errors.Is(err, errDuplicateKey) {
			t.Fatalf("checkJSON refused valid %q: %v", b, err)
		}
	})
}

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		in  string
		dup bool
		ok  bool
	}{
		{`{}`, false, true},
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, false, true},
		{`{"a":1,"a":1}`, true, false},
		{`{"a":{"b":1,"b":2}}`, true, false},
		{`[{"x":1},{"y":{"z":[{"q":1,"q":2}]}}]`, true, false},
		{`{"type":"x","Type":"y"}`, false, true},
		{`{"type":"x","\u0074ype":"y"}`, true, false},
		{`{} {}`, false, false},
		{``, false, false},
	}
	for _, tt := range tests {
		err := checkJSON([]byte(tt.in))
		if (err == nil) != tt.ok || errors.Is(err, errDuplicateKey) != tt.dup {
			t.Errorf("checkJSON(%s) = %v", tt.in, err)
		}
	}
}
