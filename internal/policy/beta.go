package policy

import (
	"encoding/json"
	"fmt"
)

// betaAlias maps the flat beta session keys (OpenAI-Beta: realtime=v1) to
// the GA session paths they correspond to.
var betaAlias = map[string]string{
	"model":                       "model",
	"instructions":                "instructions",
	"tools":                       "tools",
	"tool_choice":                 "tool_choice",
	"tracing":                     "tracing",
	"modalities":                  "output_modalities",
	"max_response_output_tokens":  "max_output_tokens",
	"voice":                       "audio.output.voice",
	"speed":                       "audio.output.speed",
	"output_audio_format":         "audio.output.format",
	"input_audio_format":          "audio.input.format",
	"input_audio_transcription":   "audio.input.transcription",
	"input_audio_noise_reduction": "audio.input.noise_reduction",
	"turn_detection":              "audio.input.turn_detection",
	"temperature":                 "temperature", // beta only; no GA counterpart
}

var gaFormatToBeta = map[string]string{"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

// ToBeta converts a GA realtime session config (as pinned by
// ValidateSessionConfig) to the flat beta shape, for clients that speak the
// beta interface: nested audio fields become voice, speed,
// input_audio_format, turn_detection, …; output_modalities ["audio"]
// becomes modalities ["audio","text"]; max_output_tokens becomes
// max_response_output_tokens. Fields the beta interface lacks (type,
// truncation, prompt, include, reasoning, parallel_tool_calls) are dropped.
func ToBeta(cfg json.RawMessage) (json.RawMessage, error) {
	v, err := decodeAny(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy: session config: %w", err)
	}
	ga, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: session config is not an object")
	}
	return json.Marshal(toBetaMap(ga))
}

func toBetaMap(ga map[string]any) map[string]any {
	out := map[string]any{}
	for betaKey, path := range betaAlias {
		v, ok := lookupPath(ga, path)
		if !ok {
			continue
		}
		switch betaKey {
		case "modalities":
			if a, ok := v.([]any); ok && len(a) == 1 && a[0] == "audio" {
				v = []any{"audio", "text"}
			}
		case "input_audio_format", "output_audio_format":
			if m, ok := v.(map[string]any); ok {
				if s, ok := gaFormatToBeta[fmt.Sprint(m["type"])]; ok {
					v = s
				}
			}
		}
		out[betaKey] = v
	}
	return out
}

// lookupPath reads a dotted path through nested objects.
func lookupPath(m map[string]any, path string) (any, bool) {
	var cur any = m
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '.' {
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[path[start:i]]; !ok {
			return nil, false
		}
		start = i + 1
	}
	return cur, true
}
