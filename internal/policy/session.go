package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// FieldError is a refusal tied to one request parameter, shaped for
// OpenAI's error envelope: {"error":{"type":"invalid_request_error",
// "code":Code,"message":Message,"param":Param}}.
type FieldError struct {
	Param   string // "limits.budget_usd", "session.audio.output.voice", …
	Code    string // unknown_parameter, invalid_type, invalid_value, missing_required_parameter, not_allowed
	Message string
}

// Error reads "param: message".
func (e *FieldError) Error() string { return e.Param + ": " + e.Message }

// Field error codes.
const (
	CodeUnknownParameter = "unknown_parameter"
	CodeInvalidType      = "invalid_type"
	CodeInvalidValue     = "invalid_value"
	CodeMissingParameter = "missing_required_parameter"
	CodeNotAllowed       = "not_allowed" // valid, but the tier does not permit it
)

func fieldErr(param, code, format string, args ...any) *FieldError {
	return &FieldError{Param: param, Code: code, Message: fmt.Sprintf(format, args...)}
}

// node is the schema of one GA session field. Containers (fields != nil)
// are merged key by key by session.update; leaves are replaced whole.
type node struct {
	fields map[string]*node
	check  func(param string, v any, t *Tier) error
}

func leaf(check func(param string, v any, t *Tier) error) *node { return &node{check: check} }

var formatNode = leaf(checkFormat)

// realtimeSchema is the GA realtime session config (protocol §4.5).
var realtimeSchema = &node{fields: map[string]*node{
	"type":              leaf(checkEnum("realtime", "transcription")),
	"model":             leaf(checkModel),
	"instructions":      leaf(checkString),
	"output_modalities": leaf(checkModalities),
	"audio": {fields: map[string]*node{
		"input": {fields: map[string]*node{
			"format":          formatNode,
			"transcription":   leaf(checkTranscription),
			"noise_reduction": leaf(checkNoiseReduction),
			"turn_detection":  leaf(checkTurnDetection),
		}},
		"output": {fields: map[string]*node{
			"format": formatNode,
			"voice":  leaf(checkVoice),
			"speed":  leaf(checkRange(0.25, 1.5)),
		}},
	}},
	"tools":               leaf(checkTools),
	"tool_choice":         leaf(checkToolChoice),
	"max_output_tokens":   leaf(checkMaxOutputTokens),
	"tracing":             leaf(checkTracing),
	"truncation":          leaf(checkTruncation),
	"prompt":              leaf(checkPrompt),
	"include":             leaf(checkStringArray),
	"reasoning":           leaf(checkObject),
	"parallel_tool_calls": leaf(checkBool),
}}

// transcriptionSchema is the GA transcription session config.
var transcriptionSchema = &node{fields: map[string]*node{
	"type": realtimeSchema.fields["type"],
	"audio": {fields: map[string]*node{
		"input": realtimeSchema.fields["audio"].fields["input"],
	}},
	"include": realtimeSchema.fields["include"],
}}

// knownSessionPath reports whether p names a field or container of the GA
// realtime session config.
func knownSessionPath(p string) bool {
	n := realtimeSchema
	for _, seg := range strings.Split(p, ".") {
		if n.fields == nil {
			return false
		}
		if n = n.fields[seg]; n == nil {
			return false
		}
	}
	return true
}

// ValidateSessionConfig checks the "session" object of a mint request
// against the GA schema and the tier: known fields only, value ranges, and
// the tier's allowed models and voices, and a transcription session only
// when the tier allows them. It returns the config to pin, with
// "type" (default "realtime") and "model" (default: the tier's first allowed
// model) filled in, re-encoded compactly, and the model ("" for a
// transcription session). Errors are *FieldError with params under
// "session.".
func (t Tier) ValidateSessionConfig(cfg json.RawMessage) (normalized json.RawMessage, model string, err error) {
	m := map[string]any{}
	if trimmed := strings.TrimSpace(string(cfg)); trimmed != "" && trimmed != "null" {
		if err := checkJSON(cfg); err != nil {
			return nil, "", fieldErr("session", CodeInvalidValue, "is not valid json: %v", err)
		}
		v, err := decodeAny(cfg)
		if err != nil {
			return nil, "", fieldErr("session", CodeInvalidValue, "is not valid json: %v", err)
		}
		var ok bool
		if m, ok = v.(map[string]any); !ok {
			return nil, "", fieldErr("session", CodeInvalidType, "must be an object")
		}
	}
	if _, ok := m["type"]; !ok {
		m["type"] = "realtime"
	}
	schema := realtimeSchema
	if m["type"] == "transcription" {
		if !t.Transcription {
			return nil, "", fieldErr("session.type", CodeNotAllowed, "tier %q does not allow transcription sessions", t.Name)
		}
		schema = transcriptionSchema
	}
	if err := walk("session", m, schema, &t); err != nil {
		return nil, "", err
	}
	if schema == realtimeSchema {
		if _, ok := m["model"]; !ok {
			m["model"] = t.defaultModel()
			if err := checkModel("session.model", m["model"], &t); err != nil {
				return nil, "", err
			}
		}
		model = m["model"].(string)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("policy: encode session: %w", err)
	}
	return out, model, nil
}

func (t Tier) defaultModel() string {
	if len(t.AllowedModels) > 0 {
		return t.AllowedModels[0]
	}
	return DefaultModel
}

// walk validates the object m against the container n.
func walk(param string, m map[string]any, n *node, t *Tier) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is deterministic
	for _, k := range keys {
		p := param + "." + k
		child := n.fields[k]
		if child == nil {
			return fieldErr(p, CodeUnknownParameter, "unknown parameter")
		}
		if child.fields != nil {
			sub, ok := m[k].(map[string]any)
			if !ok {
				return fieldErr(p, CodeInvalidType, "must be an object")
			}
			if err := walk(p, sub, child, t); err != nil {
				return err
			}
			continue
		}
		if err := child.check(p, m[k], t); err != nil {
			return err
		}
	}
	return nil
}

func checkString(p string, v any, _ *Tier) error {
	if _, ok := v.(string); !ok {
		return fieldErr(p, CodeInvalidType, "must be a string")
	}
	return nil
}

func checkBool(p string, v any, _ *Tier) error {
	if _, ok := v.(bool); !ok {
		return fieldErr(p, CodeInvalidType, "must be a boolean")
	}
	return nil
}

func checkObject(p string, v any, _ *Tier) error {
	if _, ok := v.(map[string]any); !ok {
		return fieldErr(p, CodeInvalidType, "must be an object")
	}
	return nil
}

func checkStringArray(p string, v any, _ *Tier) error {
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an array of strings")
	}
	for i, e := range a {
		if _, ok := e.(string); !ok {
			return fieldErr(fmt.Sprintf("%s[%d]", p, i), CodeInvalidType, "must be a string")
		}
	}
	return nil
}

func checkEnum(values ...string) func(string, any, *Tier) error {
	return func(p string, v any, _ *Tier) error {
		s, ok := v.(string)
		if !ok {
			return fieldErr(p, CodeInvalidType, "must be a string")
		}
		if !slices.Contains(values, s) {
			return fieldErr(p, CodeInvalidValue, "invalid value %q; supported values are %s", truncate(s, 40), strings.Join(values, ", "))
		}
		return nil
	}
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func checkRange(lo, hi float64) func(string, any, *Tier) error {
	return func(p string, v any, _ *Tier) error {
		f, ok := number(v)
		if !ok {
			return fieldErr(p, CodeInvalidType, "must be a number")
		}
		if f < lo || f > hi {
			return fieldErr(p, CodeInvalidValue, "must be between %g and %g", lo, hi)
		}
		return nil
	}
}

func checkInt(p string, v any, lo, hi int64) error {
	n, ok := v.(json.Number)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an integer")
	}
	i, err := n.Int64()
	if err != nil {
		return fieldErr(p, CodeInvalidType, "must be an integer")
	}
	if i < lo || i > hi {
		return fieldErr(p, CodeInvalidValue, "must be between %d and %d", lo, hi)
	}
	return nil
}

func checkModel(p string, v any, t *Tier) error {
	s, ok := v.(string)
	if !ok || s == "" {
		return fieldErr(p, CodeInvalidType, "must be a non-empty string")
	}
	if len(t.AllowedModels) > 0 && !slices.Contains(t.AllowedModels, s) {
		return fieldErr(p, CodeNotAllowed, "model %q is not allowed for tier %q", truncate(s, 64), t.Name)
	}
	return nil
}

func checkVoice(p string, v any, t *Tier) error {
	var name string
	switch x := v.(type) {
	case string:
		name = x
	case map[string]any:
		id, ok := x["id"].(string)
		if !ok || len(x) != 1 {
			return fieldErr(p, CodeInvalidValue, "must be a voice name or {\"id\": \"voice_…\"}")
		}
		name = id
	default:
		return fieldErr(p, CodeInvalidType, "must be a string or an object")
	}
	if len(t.AllowedVoices) > 0 && !slices.Contains(t.AllowedVoices, name) {
		return fieldErr(p, CodeNotAllowed, "voice %q is not allowed for tier %q", truncate(name, 64), t.Name)
	}
	return nil
}

func checkModalities(p string, v any, _ *Tier) error {
	a, ok := v.([]any)
	if !ok || len(a) != 1 {
		return fieldErr(p, CodeInvalidValue, `must be ["audio"] or ["text"]`)
	}
	if s, _ := a[0].(string); s != "audio" && s != "text" {
		return fieldErr(p, CodeInvalidValue, `must be ["audio"] or ["text"]`)
	}
	return nil
}

func checkFormat(p string, v any, _ *Tier) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an object")
	}
	for k := range m {
		if k != "type" && k != "rate" {
			return fieldErr(p+"."+k, CodeUnknownParameter, "unknown parameter")
		}
	}
	switch m["type"] {
	case "audio/pcm":
		if r, ok := m["rate"]; ok {
			if f, ok := number(r); !ok || f != 24000 {
				return fieldErr(p+".rate", CodeInvalidValue, "must be 24000")
			}
		}
	case "audio/pcmu", "audio/pcma":
		if _, ok := m["rate"]; ok {
			return fieldErr(p+".rate", CodeUnknownParameter, "unknown parameter")
		}
	default:
		return fieldErr(p+".type", CodeInvalidValue, "must be audio/pcm, audio/pcmu or audio/pcma")
	}
	return nil
}

// checkFields verifies an object's keys against a set and runs per-key checks.
func checkFields(p string, m map[string]any, checks map[string]func(string, any, *Tier) error, t *Tier) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, ok := checks[k]
		if !ok {
			return fieldErr(p+"."+k, CodeUnknownParameter, "unknown parameter")
		}
		if c != nil {
			if err := c(p+"."+k, m[k], t); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkTranscription(p string, v any, t *Tier) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an object or null")
	}
	if _, ok := m["model"]; !ok {
		return fieldErr(p+".model", CodeMissingParameter, "is required")
	}
	return checkFields(p, m, map[string]func(string, any, *Tier) error{
		"model":     checkString,
		"language":  checkString,
		"prompt":    checkString,
		"languages": checkStringArray,
		"keywords":  checkStringArray,
		"delay":     checkEnum("minimal", "low", "medium", "high", "xhigh"),
	}, t)
}

func checkNoiseReduction(p string, v any, t *Tier) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an object or null")
	}
	return checkFields(p, m, map[string]func(string, any, *Tier) error{
		"type": checkEnum("near_field", "far_field"),
	}, t)
}

func checkTurnDetection(p string, v any, t *Tier) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an object or null")
	}
	nonNegInt := func(p string, v any, _ *Tier) error { return checkInt(p, v, 0, 60_000) }
	common := map[string]func(string, any, *Tier) error{
		"type":               nil,
		"create_response":    checkBool,
		"interrupt_response": checkBool,
	}
	switch m["type"] {
	case "server_vad":
		common["threshold"] = checkRange(0, 1)
		common["prefix_padding_ms"] = nonNegInt
		common["silence_duration_ms"] = nonNegInt
		common["idle_timeout_ms"] = func(p string, v any, t *Tier) error {
			if v == nil {
				return nil
			}
			return nonNegInt(p, v, t)
		}
	case "semantic_vad":
		common["eagerness"] = checkEnum("low", "medium", "high", "auto")
	default:
		return fieldErr(p+".type", CodeInvalidValue, "must be server_vad or semantic_vad")
	}
	return checkFields(p, m, common, t)
}

func checkTools(p string, v any, _ *Tier) error {
	a, ok := v.([]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an array")
	}
	for i, e := range a {
		tp := fmt.Sprintf("%s[%d]", p, i)
		m, ok := e.(map[string]any)
		if !ok {
			return fieldErr(tp, CodeInvalidType, "must be an object")
		}
		switch m["type"] {
		case "function":
			if s, _ := m["name"].(string); s == "" {
				return fieldErr(tp+".name", CodeMissingParameter, "is required")
			}
		case "mcp":
			if s, _ := m["server_label"].(string); s == "" {
				return fieldErr(tp+".server_label", CodeMissingParameter, "is required")
			}
		default:
			return fieldErr(tp+".type", CodeInvalidValue, "must be function or mcp")
		}
	}
	return nil
}

func checkToolChoice(p string, v any, t *Tier) error {
	switch x := v.(type) {
	case string:
		return checkEnum("none", "auto", "required")(p, x, t)
	case map[string]any:
		if x["type"] != "function" && x["type"] != "mcp" {
			return fieldErr(p+".type", CodeInvalidValue, "must be function or mcp")
		}
		return nil
	}
	return fieldErr(p, CodeInvalidType, "must be a string or an object")
}

func checkMaxOutputTokens(p string, v any, _ *Tier) error {
	if v == "inf" {
		return nil
	}
	if _, ok := v.(json.Number); !ok {
		return fieldErr(p, CodeInvalidValue, `must be an integer between 1 and 4096 or "inf"`)
	}
	return checkInt(p, v, 1, 4096)
}

func checkTracing(p string, v any, _ *Tier) error {
	switch v.(type) {
	case nil, map[string]any:
		return nil
	}
	if v == "auto" {
		return nil
	}
	return fieldErr(p, CodeInvalidValue, `must be null, "auto" or an object`)
}

func checkTruncation(p string, v any, t *Tier) error {
	switch x := v.(type) {
	case string:
		return checkEnum("auto", "disabled")(p, x, t)
	case map[string]any:
		return checkFields(p, x, map[string]func(string, any, *Tier) error{
			"type":            checkEnum("retention_ratio"),
			"retention_ratio": checkRange(0, 1),
			"token_limits":    checkObject,
		}, t)
	}
	return fieldErr(p, CodeInvalidType, "must be a string or an object")
}

func checkPrompt(p string, v any, _ *Tier) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(p, CodeInvalidType, "must be an object or null")
	}
	if s, _ := m["id"].(string); s == "" {
		return fieldErr(p+".id", CodeMissingParameter, "is required")
	}
	return nil
}
