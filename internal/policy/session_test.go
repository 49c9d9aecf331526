package policy

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestValidateSessionConfig(t *testing.T) {
	tier := DefaultTier()
	tier.Name = "basic"
	tier.AllowedModels = []string{"gpt-realtime-mini", "gpt-realtime"}
	tier.AllowedVoices = []string{"marin", "cedar"}
	tier.Transcription = true

	ok := []struct {
		name, in, wantModel, wantJSON string
	}{
		{"empty", ``, "gpt-realtime-mini", `{"model":"gpt-realtime-mini","type":"realtime"}`},
		{"null", `null`, "gpt-realtime-mini", `{"model":"gpt-realtime-mini","type":"realtime"}`},
		{"minimal", `{"type":"realtime","model":"gpt-realtime"}`, "gpt-realtime", `{"model":"gpt-realtime","type":"realtime"}`},
		{"type defaults", `{"model":"gpt-realtime"}`, "gpt-realtime", `{"model":"gpt-realtime","type":"realtime"}`},
		{"full", `{"type":"realtime","model":"gpt-realtime","instructions":"be brief","output_modalities":["audio"],
			"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":{"model":"gpt-4o-mini-transcribe","language":"en"},
			"noise_reduction":{"type":"near_field"},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,"idle_timeout_ms":null,"create_response":true,"interrupt_response":true}},
			"output":{"format":{"type":"audio/pcmu"},"voice":"marin","speed":1.0}},
			"tools":[{"type":"function","name":"lookup","description":"d","parameters":{"type":"object"}}],"tool_choice":"auto",
			"max_output_tokens":4096,"tracing":null,"truncation":{"type":"retention_ratio","retention_ratio":0.5},"prompt":null,"include":["item.input_audio_transcription.logprobs"]}`, "gpt-realtime", ""},
		{"semantic vad, inf tokens, custom voice", `{"type":"realtime","model":"gpt-realtime","max_output_tokens":"inf","audio":{"input":{"turn_detection":{"type":"semantic_vad","eagerness":"low"}},"output":{"voice":{"id":"cedar"}}}}`, "gpt-realtime", ""},
		{"transcription", `{"type":"transcription","audio":{"input":{"transcription":{"model":"whisper-1"},"turn_detection":null}}}`, "", ""},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, model, err := tier.ValidateSessionConfig(json.RawMessage(tt.in))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if model != tt.wantModel {
				t.Errorf("model = %q, want %q", model, tt.wantModel)
			}
			if tt.wantJSON != "" && string(got) != tt.wantJSON {
				t.Errorf("normalized = %s, want %s", got, tt.wantJSON)
			}
			// The normalized config validates again to itself.
			again, _, err := tier.ValidateSessionConfig(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %s → %s, %v", got, again, err)
			}
		})
	}

	bad := []struct {
		name, in, param, code string
	}{
		{"not an object", `[1]`, "session", CodeInvalidType},
		{"not json", `{"type":`, "session", CodeInvalidValue},
		{"duplicate key", `{"model":"gpt-realtime","model":"gpt-4o-realtime-preview"}`, "session", CodeInvalidValue},
		{"unknown field", `{"type":"realtime","voice":"marin"}`, "session.voice", CodeUnknownParameter},
		{"case matters", `{"type":"realtime","Instructions":"x"}`, "session.Instructions", CodeUnknownParameter},
		{"unknown nested", `{"audio":{"output":{"volume":11}}}`, "session.audio.output.volume", CodeUnknownParameter},
		{"bad type", `{"type":"translation"}`, "session.type", CodeInvalidValue},
		{"model not allowed", `{"model":"gpt-4o-realtime-preview"}`, "session.model", CodeNotAllowed},
		{"model not string", `{"model":5}`, "session.model", CodeInvalidType},
		{"voice not allowed", `{"audio":{"output":{"voice":"alloy"}}}`, "session.audio.output.voice", CodeNotAllowed},
		{"custom voice not allowed", `{"audio":{"output":{"voice":{"id":"voice_123"}}}}`, "session.audio.output.voice", CodeNotAllowed},
		{"speed", `{"audio":{"output":{"speed":2}}}`, "session.audio.output.speed", CodeInvalidValue},
		{"rate", `{"audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}`, "session.audio.input.format.rate", CodeInvalidValue},
		{"format", `{"audio":{"input":{"format":{"type":"pcm16"}}}}`, "session.audio.input.format.type", CodeInvalidValue},
		{"audio not object", `{"audio":null}`, "session.audio", CodeInvalidType},
		{"max tokens high", `{"max_output_tokens":4097}`, "session.max_output_tokens", CodeInvalidValue},
		{"max tokens zero", `{"max_output_tokens":0}`, "session.max_output_tokens", CodeInvalidValue},
		{"max tokens fraction", `{"max_output_tokens":1.5}`, "session.max_output_tokens", CodeInvalidType},
		{"max tokens word", `{"max_output_tokens":"lots"}`, "session.max_output_tokens", CodeInvalidValue},
		{"modalities both", `{"output_modalities":["audio","text"]}`, "session.output_modalities", CodeInvalidValue},
		{"tool without name", `{"tools":[{"type":"function"}]}`, "session.tools[0].name", CodeMissingParameter},
		{"tool type", `{"tools":[{"type":"code_interpreter"}]}`, "session.tools[0].type", CodeInvalidValue},
		{"tool_choice", `{"tool_choice":"always"}`, "session.tool_choice", CodeInvalidValue},
		{"vad type", `{"audio":{"input":{"turn_detection":{"type":"magic"}}}}`, "session.audio.input.turn_detection.type", CodeInvalidValue},
		{"vad field of the other kind", `{"audio":{"input":{"turn_detection":{"type":"semantic_vad","threshold":0.5}}}}`, "session.audio.input.turn_detection.threshold", CodeUnknownParameter},
		{"threshold", `{"audio":{"input":{"turn_detection":{"type":"server_vad","threshold":1.5}}}}`, "session.audio.input.turn_detection.threshold", CodeInvalidValue},
		{"transcription without model", `{"audio":{"input":{"transcription":{"language":"en"}}}}`, "session.audio.input.transcription.model", CodeMissingParameter},
		{"delay", `{"audio":{"input":{"transcription":{"model":"gpt-transcribe","delay":"bogus"}}}}`, "session.audio.input.transcription.delay", CodeInvalidValue},
		{"tracing", `{"tracing":"yes"}`, "session.tracing", CodeInvalidValue},
		{"prompt without id", `{"prompt":{"version":"1"}}`, "session.prompt.id", CodeMissingParameter},
		{"server-filled id", `{"id":"sess_x"}`, "session.id", CodeUnknownParameter},
		{"transcription with model", `{"type":"transcription","model":"gpt-realtime"}`, "session.model", CodeUnknownParameter},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tier.ValidateSessionConfig(json.RawMessage(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Param != tt.param || fe.Code != tt.code {
				t.Fatalf("got %s (%s), want %s (%s)", fe.Param, fe.Code, tt.param, tt.code)
			}
		})
	}
}

// A tier without Transcription refuses transcription sessions with
// not_allowed on session.type; realtime sessions are unaffected.
func TestValidateSessionConfigTranscriptionPermission(t *testing.T) {
	tier := DefaultTier()
	if tier.Transcription {
		t.Fatal("the default tier allows transcription")
	}
	_, _, err := tier.ValidateSessionConfig(json.RawMessage(`{"type":"transcription"}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Param != "session.type" || fe.Code != CodeNotAllowed {
		t.Fatalf("err = %v, want not_allowed on session.type", err)
	}
	if _, _, err := tier.ValidateSessionConfig(json.RawMessage(`{"type":"realtime"}`)); err != nil {
		t.Fatalf("realtime refused: %v", err)
	}
	tier.Transcription = true
	got, model, err := tier.ValidateSessionConfig(json.RawMessage(`{"type":"transcription"}`))
	if err != nil || model != "" || string(got) != `{"type":"transcription"}` {
		t.Fatalf("allowed: %s, %q, %v", got, model, err)
	}
}

func TestValidateSessionConfigAnyModel(t *testing.T) {
	tier := DefaultTier()
	tier.AllowedModels, tier.AllowedVoices = nil, nil
	got, model, err := tier.ValidateSessionConfig(nil)
	if err != nil || model != DefaultModel || string(got) != `{"model":"gpt-realtime","type":"realtime"}` {
		t.Fatalf("got %s, %q, %v", got, model, err)
	}
	if _, model, err = tier.ValidateSessionConfig(json.RawMessage(`{"model":"gpt-future","audio":{"output":{"voice":"anyone"}}}`)); err != nil || model != "gpt-future" {
		t.Fatalf("open tier refused: %q, %v", model, err)
	}
}

func TestKnownSessionPath(t *testing.T) {
	for _, p := range []string{"model", "audio", "audio.output.voice", "audio.input.turn_detection", "tools"} {
		if !knownSessionPath(p) {
			t.Errorf("%s unknown", p)
		}
	}
	for _, p := range []string{"", "voice", "audio.output.voice.id", "audio.outputs"} {
		if knownSessionPath(p) {
			t.Errorf("%s known", p)
		}
	}
}
