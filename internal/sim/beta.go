package sim

// The beta interface (OpenAI-Beta: realtime=v1) differs from GA in event
// names and in the flat session shape; the engine works in GA terms and
// translates at the edges.

var betaFormats = map[string]string{"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}

var gaFormats = map[string]string{"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

func betaFormat(v any) any {
	s, _ := v.(string)
	if t, ok := betaFormats[s]; ok {
		if t == "audio/pcm" {
			return map[string]any{"type": t, "rate": 24000}
		}
		return map[string]any{"type": t}
	}
	return map[string]any{"type": s}
}

// betaToGA converts a flat beta session config to the GA shape.
func betaToGA(in map[string]any) map[string]any {
	out := map[string]any{}
	input := map[string]any{}
	output := map[string]any{}
	for k, v := range in {
		switch k {
		case "modalities":
			mods, _ := v.([]any)
			hasAudio := false
			for _, m := range mods {
				hasAudio = hasAudio || m == "audio"
			}
			if hasAudio {
				out["output_modalities"] = []any{"audio"}
			} else {
				out["output_modalities"] = []any{"text"}
			}
		case "voice":
			output["voice"] = v
		case "speed":
			output["speed"] = v
		case "input_audio_format":
			input["format"] = betaFormat(v)
		case "output_audio_format":
			output["format"] = betaFormat(v)
		case "input_audio_transcription":
			input["transcription"] = v
		case "input_audio_noise_reduction":
			input["noise_reduction"] = v
		case "turn_detection":
			input["turn_detection"] = v
		case "max_response_output_tokens":
			out["max_output_tokens"] = v
		case "temperature":
			// accepted and ignored, as GA has none
		default:
			out[k] = v
		}
	}
	if len(input) > 0 || len(output) > 0 {
		audio := map[string]any{}
		if len(input) > 0 {
			audio["input"] = input
		}
		if len(output) > 0 {
			audio["output"] = output
		}
		out["audio"] = audio
	}
	if _, ok := out["type"]; !ok {
		out["type"] = "realtime"
	}
	return out
}

func gaFormatName(v any) string {
	m, _ := v.(map[string]any)
	t, _ := m["type"].(string)
	if n, ok := gaFormats[t]; ok {
		return n
	}
	return "pcm16"
}

// gaToBeta converts a GA session view to the flat beta shape.
func gaToBeta(g map[string]any) map[string]any {
	in := obj(g, "audio", "input")
	out := obj(g, "audio", "output")
	mods := []any{"text", "audio"}
	if m, _ := g["output_modalities"].([]any); len(m) == 1 && m[0] == "text" {
		mods = []any{"text"}
	}
	b := map[string]any{
		"id":                          g["id"],
		"object":                      "realtime.session",
		"model":                       g["model"],
		"expires_at":                  g["expires_at"],
		"modalities":                  mods,
		"instructions":                g["instructions"],
		"voice":                       out["voice"],
		"input_audio_format":          gaFormatName(in["format"]),
		"output_audio_format":         gaFormatName(out["format"]),
		"input_audio_transcription":   in["transcription"],
		"input_audio_noise_reduction": in["noise_reduction"],
		"turn_detection":              in["turn_detection"],
		"tools":                       g["tools"],
		"tool_choice":                 g["tool_choice"],
		"temperature":                 0.8,
		"max_response_output_tokens":  g["max_output_tokens"],
		"speed":                       out["speed"],
		"tracing":                     g["tracing"],
	}
	return b
}

// betaEventNames maps GA server event types to their beta names; "" drops
// the event in beta.
var betaEventNames = map[string]string{
	"response.output_audio.delta":            "response.audio.delta",
	"response.output_audio.done":             "response.audio.done",
	"response.output_audio_transcript.delta": "response.audio_transcript.delta",
	"response.output_audio_transcript.done":  "response.audio_transcript.done",
	"response.output_text.delta":             "response.text.delta",
	"response.output_text.done":              "response.text.done",
	"conversation.item.added":                "conversation.item.created",
	"conversation.item.done":                 "",
}

// betaContentType maps GA assistant content types to beta ones.
func contentType(ga string, beta bool) string {
	if !beta {
		return ga
	}
	switch ga {
	case "output_audio":
		return "audio"
	case "output_text":
		return "text"
	}
	return ga
}
