package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/voicegate/voicegate/internal/realtime"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Action is what the relay does with a client event.
type Action int

const (
	// Pass: relay the original frame unchanged.
	Pass Action = iota
	// Rewrite: relay Decision.Frame instead of the original. No rule
	// produces it yet; callers must still honour it.
	Rewrite
	// Refuse: do not relay; send the client Decision.ErrorEvent.
	Refuse
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Pass:
		return "pass"
	case Rewrite:
		return "rewrite"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// In-stream refusal codes of the firewall (SPEC §6).
const (
	CodeEventNotAllowed = "event_not_allowed"
	CodeConfigLocked    = "session_config_locked"
	CodeEventTooLarge   = "event_too_large"
	CodeInvalidEvent    = "invalid_event"
)

// Decision is the firewall's verdict on one client event.
type Decision struct {
	Action Action
	// Frame replaces the client's frame when Action is Rewrite.
	Frame []byte
	// Type is the event's type when it could be read.
	Type string
	// Code, Message and Param describe a refusal; EventID is the client's
	// event_id, echoed in the error event.
	Code, Message, Param, EventID string
	// ChangedFields lists the dotted GA session paths a passed
	// session.update changes, for the audit trail.
	ChangedFields []string
	// Kept lists the paths a rewritten session.update asked to change
	// that keep their pinned (or locked) value; Frame carries the rest of
	// the update.
	Kept []string

	session map[string]any // the rewritten session of a session.update
}

// noisyKept are the kept paths a client is told about (KeptNotice):
// what decides the model's behaviour. Keeping an SDK's defaults (its
// model, tracing "auto", audio settings) is silent.
var noisyKept = []string{"instructions", "tools", "tool_choice", "prompt"}

// KeptNotice is the non-fatal error event telling the client which fields
// of its update kept their pinned values, or nil when only an SDK's
// defaults were kept.
func (d Decision) KeptNotice() []byte {
	var loud []string
	for _, k := range d.Kept {
		for _, n := range noisyKept {
			if k == n || strings.HasPrefix(k, n+".") {
				loud = append(loud, k)
				break
			}
		}
	}
	if len(loud) == 0 {
		return nil
	}
	return realtime.RefusalEvent(CodeConfigLocked,
		"kept the session's pinned "+strings.Join(loud, ", ")+"; the rest of the update applies", "session."+loud[0], d.EventID)
}

// ErrorEvent renders a refusal as the OpenAI-shaped error event sent to the
// client (realtime.RefusalEvent: the event gets its own event_id, the
// client's is echoed in error.event_id).
func (d Decision) ErrorEvent() []byte {
	return realtime.RefusalEvent(d.Code, d.Message, d.Param, d.EventID)
}

// Firewall inspects client events of one session before they are relayed.
// Its fields are read-only after the session starts; Inspect is safe for
// concurrent use.
type Firewall struct {
	// Tier governs the session. A nil AllowedEvents allows every client
	// event, a nil LockedFields locks DefaultLockedFields, a zero
	// MaxEventBytes means DefaultMaxEventBytes.
	Tier Tier
	// Pinned is the GA session config fixed at mint (ValidateSessionConfig's
	// output); locked fields must keep these values.
	Pinned json.RawMessage
	// Beta is set when the client speaks the beta interface: its
	// session.update carries the flat beta session shape.
	Beta bool

	pinOnce sync.Once
	pinMap  map[string]any // Pinned decoded once; only read
}

// lockDefaults are the upstream values of fields a mint may leave unset; a
// client repeating one of them does not change a locked field.
var lockDefaults = map[string]any{
	"tools":             []any{},
	"tool_choice":       "auto",
	"prompt":            nil,
	"tracing":           nil,
	"max_output_tokens": "inf",
	"output_modalities": []any{"audio"},
	"truncation":        "auto",
	"include":           nil,
}

// Inspect decides what happens to one client frame:
//   - over the tier's MaxEventBytes → event_too_large;
//   - not one JSON object, a key repeated anywhere, no string "type", or a
//     non-string event_id → invalid_event;
//   - a type outside the tier's allow-list → event_not_allowed;
//   - session.update that changes a locked field (or the session type), or
//     names a model or voice the tier does not allow → session_config_locked,
//     refusing the whole event; a malformed or unknown session field →
//     invalid_event; otherwise it passes with ChangedFields set;
//   - response.create overriding a locked field (instructions, tools, …),
//     or carrying system-role input while instructions are locked →
//     session_config_locked;
//   - conversation.item.create of a system message while instructions are
//     locked → session_config_locked (it would replace the instructions).
//
// A passed frame is relayed byte for byte.
func (f *Firewall) Inspect(frame []byte) Decision {
	maxBytes := f.Tier.MaxEventBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxEventBytes
	}
	if len(frame) > maxBytes {
		return Decision{Action: Refuse, Code: CodeEventTooLarge, EventID: sniffEventID(frame),
			Message: fmt.Sprintf("event of %d bytes exceeds the limit of %d bytes", len(frame), maxBytes)}
	}
	if eventID, ok := fastAppend(frame); ok {
		// A plain append (fastpath.go): valid by construction.
		if f.allows(typeAppend) {
			return Decision{Action: Pass, Type: typeAppend, EventID: eventID}
		}
	}
	if !json.Valid(frame) {
		return refuse(CodeInvalidEvent, "", sniffEventID(frame), "event is not valid json")
	}
	members, err := topLevel(frame)
	if err != nil {
		return refuse(CodeInvalidEvent, "", sniffEventID(frame), "%v", err)
	}
	top := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		top[k] = v
	}
	var eventID string
	if raw, ok := top["event_id"]; ok {
		if err := json.Unmarshal(raw, &eventID); err != nil {
			return refuse(CodeInvalidEvent, "event_id", "", "event_id must be a string")
		}
	}
	var typ string
	if raw, ok := top["type"]; !ok || json.Unmarshal(raw, &typ) != nil || typ == "" {
		return refuse(CodeInvalidEvent, "type", eventID, "the 'type' field is missing or not a string")
	}
	if !f.allows(typ) {
		d := refuse(CodeEventNotAllowed, "type", eventID, "event type %q is not allowed for tier %q", truncate(typ, 64), f.Tier.Name)
		d.Type = typ
		return d
	}
	var d Decision
	switch typ {
	case "session.update", "transcription_session.update", "response.create", "conversation.item.create":
		// Config-bearing events are small: check them for repeated keys at
		// every depth, since locked values are compared deep inside.
		if err := checkJSON(frame); err != nil {
			d = refuse(CodeInvalidEvent, "", "", "%v", err)
			break
		}
		switch typ {
		case "session.update", "transcription_session.update":
			d = f.sessionUpdate(top["session"], typ == "transcription_session.update")
		case "response.create":
			d = f.responseCreate(top["response"])
		case "conversation.item.create":
			d = f.itemCreate(top["item"])
		}
	}
	if d.session != nil {
		d.Frame, d.session = rewriteSession(frame, d.session), nil
	}
	d.Type, d.EventID = typ, eventID
	return d
}

// allows reports whether the tier relays client events of type typ.
func (f *Firewall) allows(typ string) bool {
	allowed := f.Tier.AllowedEvents
	if allowed == nil {
		allowed = ClientEvents
	}
	return slices.Contains(allowed, typ)
}

func refuse(code, param, eventID, format string, args ...any) Decision {
	return Decision{Action: Refuse, Code: code, Param: param, EventID: eventID, Message: fmt.Sprintf(format, args...)}
}

func (f *Firewall) locked() []string {
	if f.Tier.LockedFields == nil {
		return DefaultLockedFields
	}
	return f.Tier.LockedFields
}

// isLocked reports whether path lies at or under a locked field.
func (f *Firewall) isLocked(path string) bool {
	for _, l := range f.locked() {
		if path == l || strings.HasPrefix(path, l+".") {
			return true
		}
	}
	return false
}

// pinnedPath reports whether path is pinned: set at mint and either
// pinnable or locked by the tier. The session's model is always pinned.
func (f *Firewall) pinnedPath(pinned map[string]any, path string) bool {
	if path == "model" || strings.HasPrefix(path, "model.") {
		return true
	}
	if _, ok := lookupPath(pinned, path); !ok {
		return false
	}
	if f.isLocked(path) {
		return true
	}
	for _, p := range PinnableFields {
		if path == p || strings.HasPrefix(path, p+".") {
			return true
		}
	}
	return false
}

// protected reports whether a client may not change path: pinned at mint
// or locked by the tier.
func (f *Firewall) protected(pinned map[string]any, path string) bool {
	return f.pinnedPath(pinned, path) || f.isLocked(path)
}

// pinned is the pinned config decoded, once per firewall (every
// config-bearing event consults it); callers only read it.
func (f *Firewall) pinned() map[string]any {
	f.pinOnce.Do(func() {
		v, err := decodeAny(f.Pinned)
		if m, ok := v.(map[string]any); err == nil && ok {
			f.pinMap = m
		} else {
			f.pinMap = map[string]any{}
		}
	})
	return f.pinMap
}

// pinnedValue is the value a locked path must keep: the pinned one, else
// the upstream default.
func pinnedValue(pinned map[string]any, path string) (any, bool) {
	if v, ok := lookupPath(pinned, path); ok {
		return v, true
	}
	v, ok := lockDefaults[path]
	return v, ok
}

func objectArg(raw json.RawMessage, name string) (map[string]any, *Decision) {
	if raw == nil {
		return nil, nil
	}
	v, err := decodeAny(raw)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		d := refuse(CodeInvalidEvent, name, "", "%s must be an object", name)
		return nil, &d
	}
	return m, nil
}

func (f *Firewall) sessionUpdate(raw json.RawMessage, transcriptionBeta bool) Decision {
	if raw == nil {
		return refuse(CodeInvalidEvent, "session", "", "the 'session' field is missing")
	}
	upd, bad := objectArg(raw, "session")
	if bad != nil {
		return *bad
	}
	pinned := f.pinned()
	if f.Beta || transcriptionBeta {
		return f.betaSessionUpdate(upd, pinned)
	}
	pinnedType, _ := pinned["type"].(string)
	if pinnedType == "" {
		pinnedType = "realtime"
	}
	typ, ok := upd["type"]
	if !ok {
		return refuse(CodeInvalidEvent, "session.type", "", "session.type is required")
	}
	if typ != pinnedType {
		return refuse(CodeConfigLocked, "session.type", "", "session.type is %q for this session and cannot change", pinnedType)
	}
	schema := realtimeSchema
	if pinnedType == "transcription" {
		schema = transcriptionSchema
	}
	// The session's model is fixed: a client's model (an SDK repeats its
	// default) is kept, never refused.
	var kept []string
	if m, ok := upd["model"]; ok {
		if !jsonEqual(m, pinned["model"]) {
			kept = append(kept, "model")
		}
		delete(upd, "model")
	}
	if err := walk("session", upd, schema, &f.Tier); err != nil {
		return fieldRefusal(err)
	}
	var changed []string
	// A switch to an agent the mint pinned (a handoff) may change the
	// instructions and tools to that agent's.
	switching := agentSwitch(pinned, upd)
	for _, l := range leaves(upd, schema, "") {
		if l.path == "type" {
			continue
		}
		if switching && (l.path == "instructions" || l.path == "tools" || strings.HasPrefix(l.path, "tools.")) {
			changed = append(changed, l.path)
			continue
		}
		if f.protected(pinned, l.path) {
			if want, ok := pinnedValue(pinned, l.path); !ok || !jsonEqual(l.value, want) {
				deletePath(upd, l.path)
				kept = append(kept, l.path)
			}
			continue
		}
		changed = append(changed, l.path)
	}
	if len(kept) == 0 {
		return Decision{Action: Pass, ChangedFields: changed}
	}
	return Decision{Action: Rewrite, ChangedFields: changed, Kept: kept, session: upd}
}

// deletePath removes the leaf at a dotted path, and the objects it leaves
// empty.
func deletePath(m map[string]any, path string) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		delete(m, head)
		return
	}
	if sub, ok := m[head].(map[string]any); ok {
		deletePath(sub, rest)
		if len(sub) == 0 {
			delete(m, head)
		}
	}
}

// rewriteSession is frame (a session.update) with its session replaced.
func rewriteSession(frame []byte, session map[string]any) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(frame, &ev) != nil {
		return nil
	}
	ev["session"], _ = json.Marshal(session)
	out, _ := json.Marshal(ev)
	return out
}

func (f *Firewall) betaSessionUpdate(upd, pinned map[string]any) Decision {
	beta := toBetaMap(pinned)
	keys := sortedKeys(upd)
	var changed, kept []string
	for _, k := range keys {
		path, known := betaAlias[k]
		if !known {
			switch k {
			case "include", "client_secret":
				path = k // transcription_session.update fields
			default:
				return refuse(CodeInvalidEvent, "session."+k, "", "session.%s: unknown parameter", truncate(k, 40))
			}
		}
		switch path {
		case "model":
			if !jsonEqual(upd[k], pinned["model"]) {
				kept = append(kept, "model")
			}
			delete(upd, k)
			continue
		case "audio.output.voice":
			if err := checkVoice("session.voice", upd[k], &f.Tier); err != nil {
				return fieldRefusal(err)
			}
		}
		if f.protected(pinned, path) {
			want, ok := beta[k]
			if !ok {
				want, ok = lockDefaults[path]
			}
			if !ok || !jsonEqual(upd[k], want) {
				delete(upd, k)
				kept = append(kept, path)
			}
			continue
		}
		changed = append(changed, path)
	}
	if len(kept) == 0 {
		return Decision{Action: Pass, ChangedFields: changed}
	}
	return Decision{Action: Rewrite, ChangedFields: changed, Kept: kept, session: upd}
}

// responseAlias maps response.create fields (GA and beta names) to the
// session paths they override for that response.
var responseAlias = map[string]string{
	"instructions":        "instructions",
	"tools":               "tools",
	"tool_choice":         "tool_choice",
	"prompt":              "prompt",
	"max_output_tokens":   "max_output_tokens",
	"output_modalities":   "output_modalities",
	"reasoning":           "reasoning",
	"parallel_tool_calls": "parallel_tool_calls",
	"audio.output.voice":  "audio.output.voice",
	"audio.output.format": "audio.output.format",
	// beta names
	"voice":               "audio.output.voice",
	"modalities":          "output_modalities",
	"output_audio_format": "audio.output.format",
	"temperature":         "temperature",
}

func (f *Firewall) responseCreate(raw json.RawMessage) Decision {
	resp, bad := objectArg(raw, "response")
	if bad != nil {
		return *bad
	}
	if resp == nil {
		return Decision{Action: Pass}
	}
	pinned := f.pinned()
	beta := toBetaMap(pinned)
	fields := make([]string, 0, len(responseAlias))
	for k := range responseAlias {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		v, ok := lookupPath(resp, k)
		if !ok {
			continue
		}
		path := responseAlias[k]
		if path == "audio.output.voice" {
			if err := checkVoice("response."+k, v, &f.Tier); err != nil {
				return fieldRefusal(err)
			}
		}
		if !f.protected(pinned, path) {
			continue
		}
		want, ok := pinnedValue(pinned, path)
		if _, isBeta := betaAlias[k]; isBeta && k != path {
			want, ok = beta[k]
		}
		if !ok || !jsonEqual(v, want) {
			return lockedRefusal("response." + k)
		}
	}
	if in, ok := resp["input"].([]any); ok && f.protected(pinned, "instructions") {
		for i, item := range in {
			if isSystemMessage(item) {
				return refuse(CodeConfigLocked, fmt.Sprintf("response.input[%d]", i), "",
					"system messages would override the locked instructions")
			}
		}
	}
	return Decision{Action: Pass}
}

func (f *Firewall) itemCreate(raw json.RawMessage) Decision {
	if raw == nil || !f.protected(f.pinned(), "instructions") {
		return Decision{Action: Pass}
	}
	v, err := decodeAny(raw)
	if err == nil && isSystemMessage(v) {
		return refuse(CodeConfigLocked, "item.role", "", "system messages would override the locked instructions")
	}
	return Decision{Action: Pass}
}

func isSystemMessage(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["role"] == "system"
}

func lockedRefusal(param string) Decision {
	return refuse(CodeConfigLocked, param, "", "%s is locked for this session and cannot be changed", param)
}

// fieldRefusal maps a schema error: a tier permission becomes
// session_config_locked, anything else invalid_event.
func fieldRefusal(err error) Decision {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return refuse(CodeInvalidEvent, "", "", "%v", err)
	}
	code := CodeInvalidEvent
	if fe.Code == CodeNotAllowed {
		code = CodeConfigLocked
	}
	return refuse(code, fe.Param, "", "%s", fe.Error())
}

type leafValue struct {
	path  string
	value any
}

// leaves flattens m through the schema's containers, in path order.
func leaves(m map[string]any, n *node, prefix string) []leafValue {
	var out []leafValue
	for _, k := range sortedKeys(m) {
		p := prefix + k
		if child := n.fields[k]; child != nil && child.fields != nil {
			if sub, ok := m[k].(map[string]any); ok {
				out = append(out, leaves(sub, child, p+".")...)
				continue
			}
		}
		out = append(out, leafValue{path: p, value: m[k]})
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// eventIDPattern finds a client event_id in a frame too large or too broken
// to parse; it only serves to echo the id, never to decide.
var eventIDPattern = regexp.MustCompile(`"event_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"`)

// sniffEventID looks for event_id near both ends of the frame, where
// encoders put small fields, so a huge frame is not scanned whole.
func sniffEventID(frame []byte) string {
	const window = 4096
	for _, part := range [][]byte{frame[:min(len(frame), window)], frame[max(0, len(frame)-window):]} {
		if m := eventIDPattern.FindSubmatch(part); m != nil {
			return string(m[1])
		}
	}
	return ""
}
