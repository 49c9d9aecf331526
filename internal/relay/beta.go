package relay

import "encoding/json"

// toBeta translates a pinned GA session config into the flat beta shape
// (OpenAI-Beta: realtime=v1) for the pinning session.update. Mapped:
//
//	instructions, tools, tool_choice, tracing        → same name
//	output_modalities ["audio"] / ["text"]           → modalities ["audio","text"] / ["text"]
//	max_output_tokens                                → max_response_output_tokens
//	audio.input.format / audio.output.format         → input_audio_format / output_audio_format
//	                                                   (audio/pcm → pcm16, audio/pcmu → g711_ulaw, audio/pcma → g711_alaw)
//	audio.input.transcription                        → input_audio_transcription
//	audio.input.turn_detection                       → turn_detection
//	audio.input.noise_reduction                      → input_audio_noise_reduction
//	audio.output.voice, audio.output.speed           → voice, speed
//
// Dropped, having no beta equivalent or being immutable: type, model (it is
// in the URL), truncation, prompt, include, reasoning, parallel_tool_calls.
func toBeta(ga json.RawMessage) (json.RawMessage, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(ga, &in); err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for _, k := range []string{"instructions", "tools", "tool_choice", "tracing"} {
		if v, ok := in[k]; ok {
			out[k] = v
		}
	}
	if v, ok := in["output_modalities"]; ok {
		var mods []string
		if json.Unmarshal(v, &mods) == nil {
			if len(mods) == 1 && mods[0] == "audio" {
				mods = []string{"audio", "text"}
			}
			out["modalities"], _ = json.Marshal(mods)
		}
	}
	if v, ok := in["max_output_tokens"]; ok {
		out["max_response_output_tokens"] = v
	}
	var audio struct {
		Input  map[string]json.RawMessage `json:"input"`
		Output map[string]json.RawMessage `json:"output"`
	}
	if v, ok := in["audio"]; ok {
		if err := json.Unmarshal(v, &audio); err != nil {
			return nil, err
		}
	}
	if f, ok := betaFormat(audio.Input["format"]); ok {
		out["input_audio_format"] = f
	}
	if f, ok := betaFormat(audio.Output["format"]); ok {
		out["output_audio_format"] = f
	}
	for ga, beta := range map[string]string{
		"transcription":   "input_audio_transcription",
		"turn_detection":  "turn_detection",
		"noise_reduction": "input_audio_noise_reduction",
	} {
		if v, ok := audio.Input[ga]; ok {
			out[beta] = v
		}
	}
	for _, k := range []string{"voice", "speed"} {
		if v, ok := audio.Output[k]; ok {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// betaFormat maps a GA audio format object to the beta format name.
func betaFormat(raw json.RawMessage) (json.RawMessage, bool) {
	if raw == nil {
		return nil, false
	}
	var f struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return nil, false
	}
	name, ok := map[string]string{"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}[f.Type]
	if !ok {
		return nil, false
	}
	b, _ := json.Marshal(name)
	return b, true
}
