package realtime

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

func TestDecodeTranscriptionCompleted(t *testing.T) {
	// The protocol notes' token-billed example.
	frame := `{"type":"conversation.item.input_audio_transcription.completed","event_id":"event_1","item_id":"item_1",` +
		`"content_index":0,"transcript":"Hello.","usage":{"type":"tokens","total_tokens":22,"input_tokens":13,` +
		`"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}}`
	ev, err := DecodeTranscriptionCompleted([]byte(frame))
	if err != nil || ev.ItemID != "item_1" || ev.Usage == nil {
		t.Fatalf("DecodeTranscriptionCompleted = %+v, %v", ev, err)
	}
	u, err := DecodeTranscriptionUsage(ev.Usage)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Usage{TotalTokens: 22, InputTokens: 13, OutputTokens: 9, InputAudioTokens: 13, OutputTextTokens: 9}
	if got := u.Flat(); got != want {
		t.Errorf("Flat = %+v, want %+v", got, want)
	}

	for _, f := range []string{
		`{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_2","transcript":"x"}`,
		`{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_2","usage":null}`,
	} {
		ev, err := DecodeTranscriptionCompleted([]byte(f))
		if err != nil || ev.Usage != nil {
			t.Errorf("%s: usage %q, err %v; want none", f, ev.Usage, err)
		}
	}
	for _, f := range []string{`{"type":"conversation.item.input_audio_transcription.completed"}`, `{`, `[]`} {
		if _, err := DecodeTranscriptionCompleted([]byte(f)); err == nil {
			t.Errorf("%s: decoded, want an error", f)
		}
	}
}

func TestDecodeTranscriptionUsage(t *testing.T) {
	tests := []struct {
		raw  string
		want store.Usage
		err  string
	}{
		{`{"type":"duration","seconds":3}`, store.Usage{AudioSeconds: 3}, ""},
		{`{"type":"duration","seconds":2.01}`, store.Usage{AudioSeconds: 3}, ""},
		{`{"type":"duration","seconds":0}`, store.Usage{}, ""},
		{`{"type":"duration"}`, store.Usage{}, ""},
		// A text prompt counts as text input; undetailed input as audio.
		{`{"type":"tokens","total_tokens":30,"input_tokens":20,"input_token_details":{"text_tokens":5,"audio_tokens":15},"output_tokens":10}`,
			store.Usage{TotalTokens: 30, InputTokens: 20, OutputTokens: 10, InputTextTokens: 5, InputAudioTokens: 15, OutputTextTokens: 10}, ""},
		{`{"type":"tokens","input_tokens":20,"output_tokens":10}`,
			store.Usage{TotalTokens: 30, InputTokens: 20, OutputTokens: 10, InputAudioTokens: 20, OutputTextTokens: 10}, ""},
		// Details larger than the input total: the details win.
		{`{"type":"tokens","input_tokens":1,"input_token_details":{"text_tokens":2,"audio_tokens":3}}`,
			store.Usage{TotalTokens: 5, InputTokens: 5, InputTextTokens: 2, InputAudioTokens: 3}, ""},
		{`{"type":"words","count":3}`, store.Usage{}, `unknown type "words"`},
		{`{"seconds":3}`, store.Usage{}, `unknown type ""`},
		{`{"type":"duration","seconds":-1}`, store.Usage{}, "out of range"},
		{`{"type":"duration","seconds":1e300}`, store.Usage{}, "out of range"},
		{`{"type":"tokens","input_tokens":-1}`, store.Usage{}, "out of range"},
		{`{"type":"tokens","output_tokens":9223372036854775807}`, store.Usage{}, "out of range"},
		{`{"type":"tokens","output_tokens":"9"}`, store.Usage{}, "decode"},
		{`null`, store.Usage{}, "unknown type"},
	}
	for _, tc := range tests {
		u, err := DecodeTranscriptionUsage([]byte(tc.raw))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.raw, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.raw, err)
		case u.Flat() != tc.want:
			t.Errorf("%s: Flat = %+v, want %+v", tc.raw, u.Flat(), tc.want)
		}
	}
}

// FuzzTranscriptionUsage: any input decodes or fails without panicking,
// and an accepted usage flattens to non-negative, consistent counts.
func FuzzTranscriptionUsage(f *testing.F) {
	for _, s := range []string{
		`{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}`,
		`{"type":"duration","seconds":3}`, `{"type":"duration","seconds":0.5}`, `{"type":"x"}`, `null`, `{`,
		`{"type":"tokens","input_token_details":{"text_tokens":1099511627776,"audio_tokens":1099511627776}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		frame, _ := json.Marshal(map[string]any{"type": TypeInputTranscriptionCompleted, "item_id": "item_f", "usage": json.RawMessage(raw)})
		_, _ = DecodeTranscriptionCompleted(frame)
		_, _ = DecodeTranscriptionCompleted(raw)
		u, err := DecodeTranscriptionUsage(raw)
		if err != nil {
			return
		}
		fl := u.Flat()
		if fl.TotalTokens < 0 || fl.InputTokens < 0 || fl.InputAudioTokens < 0 || fl.InputTextTokens < 0 ||
			fl.OutputTextTokens < 0 || fl.AudioSeconds < 0 || fl.AudioSeconds > maxTranscriptionSeconds {
			t.Fatalf("%s: negative or absurd flat usage %+v", raw, fl)
		}
		if fl.InputTextTokens+fl.InputAudioTokens != fl.InputTokens || fl.TotalTokens < fl.InputTokens+fl.OutputTokens {
			t.Fatalf("%s: inconsistent flat usage %+v", raw, fl)
		}
		// What the simulator sends decodes to the same usage.
		enc, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTranscriptionUsage(enc)
		if err != nil || back.Flat() != fl {
			t.Fatalf("%s: round trip %s = %+v, %v; want %+v", raw, enc, back.Flat(), err, fl)
		}
	})
}

func TestTranscriptionUsageJSON(t *testing.T) {
	for _, tc := range []struct {
		u    TranscriptionUsage
		want string
	}{
		{TranscriptionUsage{Type: "duration", Seconds: 3}, `{"type":"duration","seconds":3}`},
		{TranscriptionUsage{Type: "tokens", TotalTokens: 22, InputTokens: 13, OutputTokens: 9,
			InputTokenDetails: TranscriptionInputTokenDetail{AudioTokens: 13}},
			`{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}`},
	} {
		got, err := json.Marshal(tc.u)
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal = %s, %v; want %s", got, err, tc.want)
		}
	}
	w := TranscriptionUsage{Type: "tokens", InputTokens: 13, OutputTokens: 9,
		InputTokenDetails: TranscriptionInputTokenDetail{TextTokens: 3, AudioTokens: 10}}.Wire()
	if w.TotalTokens != 22 || w.InputTokenDetails.TextTokens != 3 || w.InputTokenDetails.AudioTokens != 10 || w.OutputTokenDetails.TextTokens != 9 {
		t.Errorf("Wire = %+v", w)
	}
	if (TranscriptionUsage{Type: "duration", Seconds: 4}).Wire() != (Usage{}) {
		t.Error("duration Wire not zero")
	}
}
