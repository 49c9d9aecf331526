package relay

import (
	"encoding/json"
	"testing"
)

func TestToBeta(t *testing.T) {
	ga := `{"type":"realtime","model":"gpt-realtime","instructions":"Be brief.","output_modalities":["audio"],
		"max_output_tokens":512,"tools":[{"type":"function","name":"f"}],"tool_choice":"auto","truncation":"auto",
		"audio":{"input":{"format":{"type":"audio/pcmu"},"transcription":{"model":"whisper-1"},
		"turn_detection":null,"noise_reduction":{"type":"near_field"}},
		"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1.1}}}`
	got, err := toBeta(json.RawMessage(ga))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(got, &m)
	want := map[string]string{
		"instructions":                `"Be brief."`,
		"modalities":                  `["audio","text"]`,
		"max_response_output_tokens":  `512`,
		"input_audio_format":          `"g711_ulaw"`,
		"output_audio_format":         `"pcm16"`,
		"input_audio_transcription":   `{"model":"whisper-1"}`,
		"turn_detection":              `null`,
		"input_audio_noise_reduction": `{"type":"near_field"}`,
		"voice":                       `"marin"`,
		"speed":                       `1.1`,
		"tool_choice":                 `"auto"`,
		"tools":                       `[{"name":"f","type":"function"}]`,
	}
	for k, w := range want {
		b, _ := json.Marshal(m[k])
		if _, ok := m[k]; !ok || string(b) != w {
			t.Errorf("%s = %s, want %s", k, b, w)
		}
	}
	for _, k := range []string{"type", "model", "audio", "output_modalities", "truncation", "max_output_tokens"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s should not be in the beta shape", k)
		}
	}
	text, _ := toBeta(json.RawMessage(`{"output_modalities":["text"]}`))
	if string(text) != `{"modalities":["text"]}` {
		t.Errorf("text-only = %s", text)
	}
	if _, err := toBeta(json.RawMessage(`[`)); err == nil {
		t.Error("bad JSON accepted")
	}
}
