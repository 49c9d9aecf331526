package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// defaultModel is the model of a session that names none.
const defaultModel = "gpt-realtime"

var voices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}

// sessionConfig is a session's effective GA configuration. ga is the GA
// session object (unknown fields kept, so they are echoed like upstream);
// the typed fields are derived from it after every accepted update.
type sessionConfig struct {
	ga map[string]any

	model        string
	modelLocked  bool // set by ?model=, a bound config, or an earlier update
	transcribe   bool // session.type "transcription"
	textOnly     bool
	instructions string
	inFormat     string // "pcm", "pcmu", "pcma"
	outFormat    string
	voice        string
	vad          *vadConfig // nil = manual turns
	transcriber  string     // input transcription model, "" = off
	tools        []tool     // function tools
	toolChoice   string     // "auto", "none", "required" or a tool name
	maxOutput    int        // 0 = inf
}

// vadConfig is audio.input.turn_detection.
type vadConfig struct {
	semantic          bool
	threshold         float64
	prefixPaddingMs   int
	silenceMs         int
	createResponse    bool
	interruptResponse bool
}

// configError is a rejected configuration: it becomes an error event with
// param, or an HTTP 400.
type configError struct {
	code, msg, param string
}

func defaultConfig(model string) *sessionConfig {
	if model == "" {
		model = defaultModel
	}
	c := &sessionConfig{ga: map[string]any{
		"type":              "realtime",
		"object":            "realtime.session",
		"model":             model,
		"output_modalities": []any{"audio"},
		"instructions":      "You are a helpful, witty, and friendly AI. Your voice and personality should be warm and engaging.",
		"tools":             []any{},
		"tool_choice":       "auto",
		"max_output_tokens": "inf",
		"tracing":           nil,
		"truncation":        "auto",
		"prompt":            nil,
		"audio": map[string]any{
			"input": map[string]any{
				"format":          map[string]any{"type": "audio/pcm", "rate": 24000},
				"transcription":   nil,
				"noise_reduction": nil,
				"turn_detection": map[string]any{
					"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
					"silence_duration_ms": 200, "idle_timeout_ms": nil,
					"create_response": true, "interrupt_response": true,
				},
			},
			"output": map[string]any{
				"format": map[string]any{"type": "audio/pcm", "rate": 24000},
				"voice":  "alloy",
				"speed":  1.0,
			},
		},
		"include": nil,
	}}
	if err := c.derive(); err != nil {
		panic(err) // the defaults are valid
	}
	return c
}

// update merges a session.update payload (GA, or the flat beta shape when
// beta) into c. Only present fields change; audio, audio.input and
// audio.output merge key by key, everything else is replaced. creating
// allows setting the model (client secrets, call setup).
func (c *sessionConfig) update(raw []byte, beta, creating bool) *configError {
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return &configError{"invalid_value", "Invalid 'session': expected an object.", "session"}
	}
	if beta {
		in = betaToGA(in)
	} else if _, ok := in["type"]; !ok && !creating {
		return &configError{"missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"}
	}
	if t, ok := in["type"]; ok && t != "realtime" && t != "transcription" {
		return &configError{"invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'realtime' and 'transcription'.", t), "session.type"}
	}
	if m, ok := in["model"]; ok && !creating {
		if ms, _ := m.(string); ms != c.model && c.modelLocked {
			return &configError{"invalid_value", "Cannot update a session's model.", "session.model"}
		}
	}
	_, setsModel := in["model"]
	for _, k := range []string{"object", "id", "expires_at"} {
		delete(in, k)
	}
	next := &sessionConfig{ga: deepCopy(c.ga).(map[string]any)}
	mergeInto(next.ga, in, 0)
	if err := next.derive(); err != nil {
		return err
	}
	next.modelLocked = c.modelLocked || setsModel
	*c = *next
	return nil
}

// mergeInto merges src into dst; depth-limited key-wise merge for the
// audio sub-objects only.
func mergeInto(dst, src map[string]any, depth int) {
	for k, v := range src {
		sub, isMap := v.(map[string]any)
		old, oldIsMap := dst[k].(map[string]any)
		if isMap && oldIsMap && (depth == 0 && k == "audio" || depth == 1 && (k == "input" || k == "output")) {
			mergeInto(old, sub, depth+1)
			continue
		}
		dst[k] = v
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	default:
		return v
	}
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, _ := m[p].(map[string]any)
		if next == nil {
			return nil
		}
		m = next
	}
	return m
}

func formatName(f any, param string) (string, *configError) {
	m, _ := f.(map[string]any)
	if f == nil {
		return "pcm", nil
	}
	t, _ := m["type"].(string)
	switch t {
	case "audio/pcm":
		if r, ok := m["rate"]; ok && r != float64(24000) && r != 24000 {
			return "", &configError{"invalid_value", "Invalid value: only 24000 Hz is supported for audio/pcm.", param + ".rate"}
		}
		return "pcm", nil
	case "audio/pcmu":
		return "pcmu", nil
	case "audio/pcma":
		return "pcma", nil
	}
	return "", &configError{"invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.", t), param + ".type"}
}

// derive validates c.ga and fills the typed fields.
func (c *sessionConfig) derive() *configError {
	g := c.ga
	c.model, _ = g["model"].(string)
	if c.model == "" {
		c.model = defaultModel
		g["model"] = defaultModel
	}
	c.transcribe = g["type"] == "transcription"
	if c.transcribe {
		g["object"] = "realtime.transcription_session"
	} else {
		g["object"] = "realtime.session"
	}
	if instr, ok := g["instructions"]; ok {
		s, isStr := instr.(string)
		if !isStr {
			return &configError{"invalid_type", "Invalid type for 'session.instructions': expected a string.", "session.instructions"}
		}
		c.instructions = s
	}
	c.textOnly = false
	if mods, ok := g["output_modalities"].([]any); ok {
		if len(mods) != 1 || (mods[0] != "audio" && mods[0] != "text") {
			return &configError{"invalid_value", "Invalid 'session.output_modalities': expected ['audio'] or ['text'].", "session.output_modalities"}
		}
		c.textOnly = mods[0] == "text"
	}
	var err *configError
	if c.inFormat, err = formatName(obj(g, "audio", "input")["format"], "session.audio.input.format"); err != nil {
		return err
	}
	out := obj(g, "audio", "output")
	if c.outFormat, err = formatName(out["format"], "session.audio.output.format"); err != nil {
		return err
	}
	c.voice, _ = out["voice"].(string)
	if c.voice == "" {
		c.voice = "alloy"
	} else if !slices.Contains(voices, c.voice) {
		return &configError{"invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: '%s'.", c.voice, strings.Join(voices, "', '")), "session.audio.output.voice"}
	}
	if c.vad, err = parseVAD(obj(g, "audio", "input")["turn_detection"]); err != nil {
		return err
	}
	c.transcriber = ""
	if tr := obj(g, "audio", "input", "transcription"); tr != nil {
		c.transcriber, _ = tr["model"].(string)
		if c.transcriber == "" {
			c.transcriber = "whisper-1"
		}
	}
	if c.tools, err = parseTools(g["tools"], "session.tools"); err != nil {
		return err
	}
	if c.toolChoice, err = parseToolChoice(g["tool_choice"], "session.tool_choice"); err != nil {
		return err
	}
	if c.maxOutput, err = parseMaxTokens(g["max_output_tokens"], "session.max_output_tokens"); err != nil {
		return err
	}
	return nil
}

func parseVAD(v any) (*vadConfig, *configError) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &configError{"invalid_type", "Invalid type for 'session.audio.input.turn_detection'.", "session.audio.input.turn_detection"}
	}
	d := &vadConfig{threshold: 0.5, prefixPaddingMs: 300, silenceMs: 200, createResponse: true, interruptResponse: true}
	switch m["type"] {
	case "server_vad":
		if x, ok := m["threshold"].(float64); ok {
			if x < 0 || x > 1 {
				return nil, &configError{"decimal_above_max_value", "Invalid 'session.audio.input.turn_detection.threshold': must be between 0 and 1.", "session.audio.input.turn_detection.threshold"}
			}
			d.threshold = x
		}
		if x, ok := m["prefix_padding_ms"].(float64); ok {
			d.prefixPaddingMs = int(x)
		}
		if x, ok := m["silence_duration_ms"].(float64); ok {
			d.silenceMs = int(x)
		}
	case "semantic_vad":
		d.semantic = true
		switch m["eagerness"] {
		case "high":
			d.silenceMs = 250
		case "low":
			d.silenceMs = 800
		case nil, "auto", "medium":
			d.silenceMs = 500
		default:
			return nil, &configError{"invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'low', 'medium', 'high', and 'auto'.", m["eagerness"]), "session.audio.input.turn_detection.eagerness"}
		}
	default:
		return nil, &configError{"invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'server_vad' and 'semantic_vad'.", m["type"]), "session.audio.input.turn_detection.type"}
	}
	if x, ok := m["create_response"].(bool); ok {
		d.createResponse = x
	}
	if x, ok := m["interrupt_response"].(bool); ok {
		d.interruptResponse = x
	}
	return d, nil
}

// tool is a function tool of a session or response: its name and the
// arguments the simulated model calls it with (exampleArgs).
type tool struct{ name, args string }

func parseTools(v any, param string) ([]tool, *configError) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &configError{"invalid_type", "Invalid type for '" + param + "': expected an array.", param}
	}
	var tools []tool
	for i, t := range list {
		m, _ := t.(map[string]any)
		if m == nil {
			return nil, &configError{"invalid_type", fmt.Sprintf("Invalid type for '%s[%d]': expected an object.", param, i), fmt.Sprintf("%s[%d]", param, i)}
		}
		if m["type"] == "function" || m["type"] == nil {
			name, _ := m["name"].(string)
			if name == "" {
				return nil, &configError{"missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s[%d].name'.", param, i), fmt.Sprintf("%s[%d].name", param, i)}
			}
			args, _ := json.Marshal(exampleValue(m["parameters"], 0))
			if string(args) == "null" {
				args = []byte("{}")
			}
			tools = append(tools, tool{name: name, args: string(args)})
		}
	}
	return tools, nil
}

// exampleValue is a deterministic value that satisfies a JSON Schema
// (the subset tools use): the first enum value or const, else by type —
// "example" for a string (its format's shape for date and date-time), 1
// for a number or integer (the minimum when it is above), true, one
// example item for an array, and for an object every property (required
// or not).
func exampleValue(schema any, depth int) any {
	m, _ := schema.(map[string]any)
	if m == nil || depth > 8 {
		return nil
	}
	if c, ok := m["const"]; ok {
		return c
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := m[k].([]any); ok && len(alts) > 0 {
			return exampleValue(alts[0], depth+1)
		}
	}
	typ := m["type"]
	if list, ok := typ.([]any); ok && len(list) > 0 {
		typ = list[0]
	}
	switch typ {
	case "string":
		switch m["format"] {
		case "date":
			return "2026-01-01"
		case "date-time":
			return "2026-01-01T00:00:00Z"
		}
		return "example"
	case "number", "integer":
		if min, ok := m["minimum"].(float64); ok && min > 1 {
			return min
		}
		return 1
	case "boolean":
		return true
	case "array":
		if item := exampleValue(m["items"], depth+1); item != nil {
			return []any{item}
		}
		return []any{}
	case "null":
		return nil
	}
	props, _ := m["properties"].(map[string]any)
	out := map[string]any{}
	for k, v := range props {
		out[k] = exampleValue(v, depth+1)
	}
	return out
}

func parseToolChoice(v any, param string) (string, *configError) {
	switch t := v.(type) {
	case nil:
		return "auto", nil
	case string:
		if t == "auto" || t == "none" || t == "required" {
			return t, nil
		}
	case map[string]any:
		if name, _ := t["name"].(string); name != "" {
			return "fn:" + name, nil
		}
	}
	return "", &configError{"invalid_value", "Invalid value for '" + param + "'. Supported values are: 'none', 'auto', 'required' or a named function.", param}
}

func parseMaxTokens(v any, param string) (int, *configError) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case string:
		if t == "inf" {
			return 0, nil
		}
	case float64:
		if t >= 1 && t <= 4096 && t == float64(int(t)) {
			return int(t), nil
		}
		return 0, &configError{"integer_above_max_value", "Invalid '" + param + "': must be between 1 and 4096 or 'inf'.", param}
	}
	return 0, &configError{"invalid_value", "Invalid '" + param + "': must be an integer between 1 and 4096 or 'inf'.", param}
}

// view is the session object sent in session.created/updated: the GA
// object, or the flat beta shape when beta.
func (c *sessionConfig) view(beta bool, id string, expiresAt int64) map[string]any {
	v := maps.Clone(c.ga)
	v["id"] = id
	v["expires_at"] = expiresAt
	if beta {
		return gaToBeta(v)
	}
	return v
}
