package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/voicegate/voicegate/internal/realtime"
)

// item is one conversation item.
type item struct {
	id      string
	typ     string // message, function_call, function_call_output
	role    string // user, assistant, system
	status  string
	text    string // text content or transcript
	hasText bool   // content is text (input_text/output_text)
	audio   []byte // user audio as received (in the session's input format)
	audioMs int    // audio duration (assistant: as played, after truncation)
	isAudio bool
	noTrans bool // audio transcript not available (null)
	callID  string
	name    string
	args    string
	output  string
}

// tokens is what the item costs when re-sent as input (see doc.go).
func (it *item) tokens() tokenSplit {
	switch it.typ {
	case "function_call":
		return tokenSplit{text: textTokens(len(it.name) + len(it.args))}
	case "function_call_output":
		return tokenSplit{text: textTokens(len(it.output))}
	}
	if it.isAudio {
		return tokenSplit{audio: ceilDiv(it.audioMs, 100)}
	}
	return tokenSplit{text: textTokens(len(it.text))}
}

// json renders the item; withAudio includes user audio bytes (retrieve).
func (s *session) itemJSON(it *item, withAudio bool) map[string]any {
	m := map[string]any{"id": it.id, "type": it.typ, "object": "realtime.item"}
	switch it.typ {
	case "function_call":
		m["status"] = it.status
		m["call_id"] = it.callID
		m["name"] = it.name
		m["arguments"] = it.args
		return m
	case "function_call_output":
		m["call_id"] = it.callID
		m["output"] = it.output
		return m
	}
	m["status"] = it.status
	m["role"] = it.role
	content := []any{}
	switch {
	case it.role != "assistant" && it.isAudio:
		c := map[string]any{"type": "input_audio", "transcript": nil}
		if !it.noTrans {
			c["transcript"] = it.text
		}
		if withAudio {
			c["audio"] = base64.StdEncoding.EncodeToString(it.audio)
		}
		content = append(content, c)
	case it.role != "assistant":
		content = append(content, map[string]any{"type": "input_text", "text": it.text})
	case it.isAudio:
		if it.status != "in_progress" || it.text != "" {
			content = append(content, map[string]any{"type": contentType("output_audio", s.beta), "transcript": it.text})
		}
	default:
		if it.status != "in_progress" || it.text != "" {
			content = append(content, map[string]any{"type": contentType("output_text", s.beta), "text": it.text})
		}
	}
	m["content"] = content
	return m
}

func (s *session) indexOf(id string) int {
	for i, it := range s.items {
		if it.id == id {
			return i
		}
	}
	return -1
}

func (s *session) previousID(i int) any {
	if i <= 0 {
		return nil
	}
	return s.items[i-1].id
}

// addItem inserts it after previous ("" = at the end, "root" = first) and
// emits conversation.item.added and .done.
func (s *session) addItem(it *item, previous string) {
	at := len(s.items)
	switch previous {
	case "":
	case "root":
		at = 0
	default:
		at = s.indexOf(previous) + 1
	}
	s.items = append(s.items, nil)
	copy(s.items[at+1:], s.items[at:])
	s.items[at] = it
	s.emit("conversation.item.added", map[string]any{"previous_item_id": s.previousID(at), "item": s.itemJSON(it, false)})
	if it.status != "in_progress" {
		s.emit("conversation.item.done", map[string]any{"previous_item_id": s.previousID(at), "item": s.itemJSON(it, false)})
	}
}

// parseItem converts a client item (conversation.item.create or
// response.create input) into an item.
func (s *session) parseItem(raw map[string]any) (*item, string, string) {
	it := &item{status: "completed"}
	it.id, _ = raw["id"].(string)
	if it.id == "" {
		it.id = realtime.NewID("item_")
	}
	it.typ, _ = raw["type"].(string)
	switch it.typ {
	case "function_call":
		it.callID, _ = raw["call_id"].(string)
		it.name, _ = raw["name"].(string)
		it.args, _ = raw["arguments"].(string)
		if it.callID == "" {
			it.callID = "call_" + realtime.NewID("")[:16]
		}
		return it, "", ""
	case "function_call_output":
		it.callID, _ = raw["call_id"].(string)
		it.output, _ = raw["output"].(string)
		if it.callID == "" {
			return nil, "Missing required parameter: 'item.call_id'.", "item.call_id"
		}
		return it, "", ""
	case "message":
	default:
		return nil, fmt.Sprintf("Invalid value: '%v'. Supported values are: 'message', 'function_call', and 'function_call_output'.", raw["type"]), "item.type"
	}
	it.role, _ = raw["role"].(string)
	if it.role != "user" && it.role != "assistant" && it.role != "system" {
		return nil, fmt.Sprintf("Invalid value: '%v'. Supported values are: 'user', 'assistant', and 'system'.", raw["role"]), "item.role"
	}
	content, _ := raw["content"].([]any)
	for i, c := range content {
		part, _ := c.(map[string]any)
		switch part["type"] {
		case "input_text", "output_text", "text":
			t, _ := part["text"].(string)
			it.text += t
			it.hasText = true
		case "input_audio", "output_audio", "audio":
			it.isAudio = true
			if a, ok := part["audio"].(string); ok {
				b, err := base64.StdEncoding.DecodeString(a)
				if err != nil {
					return nil, "Invalid 'item.content[" + fmt.Sprint(i) + "].audio': not valid base64.", fmt.Sprintf("item.content[%d].audio", i)
				}
				it.audio = append(it.audio, b...)
			}
			if t, ok := part["transcript"].(string); ok {
				it.text += t
			} else {
				it.noTrans = true
			}
		case "input_image":
			// accepted; images cost nothing in the simulator
		default:
			return nil, fmt.Sprintf("Invalid value: '%v'.", part["type"]), fmt.Sprintf("item.content[%d].type", i)
		}
	}
	if it.isAudio {
		it.audioMs = len(it.audio) / bytesPerMs(s.cfg.inFormat)
		if it.role == "assistant" {
			it.audioMs = outputAudioMs(it.text)
		}
	}
	return it, "", ""
}

func (s *session) itemCreate(ev map[string]any, eid string) {
	raw, _ := ev["item"].(map[string]any)
	if raw == nil {
		s.invalid("missing_required_parameter", "Missing required parameter: 'item'.", "item", eid)
		return
	}
	it, msg, param := s.parseItem(raw)
	if it == nil {
		s.invalid("invalid_value", msg, param, eid)
		return
	}
	if s.indexOf(it.id) >= 0 {
		s.invalid("invalid_value", "Item with id '"+it.id+"' already exists.", "item.id", eid)
		return
	}
	prev, _ := ev["previous_item_id"].(string)
	if prev != "" && prev != "root" && s.indexOf(prev) < 0 {
		s.invalid("invalid_value", "Previous item with id '"+prev+"' not found.", "previous_item_id", eid)
		return
	}
	s.addItem(it, prev)
}

func (s *session) itemByID(ev map[string]any, eid string) (int, *item) {
	id, _ := ev["item_id"].(string)
	i := s.indexOf(id)
	if i < 0 {
		s.invalid("item_not_found", "Item with item_id not found: "+id, "item_id", eid)
		return -1, nil
	}
	return i, s.items[i]
}

func (s *session) itemRetrieve(ev map[string]any, eid string) {
	if _, it := s.itemByID(ev, eid); it != nil {
		s.emit("conversation.item.retrieved", map[string]any{"item": s.itemJSON(it, true)})
	}
}

func (s *session) itemDelete(ev map[string]any, eid string) {
	i, it := s.itemByID(ev, eid)
	if it == nil {
		return
	}
	s.items = append(s.items[:i], s.items[i+1:]...)
	s.emit("conversation.item.deleted", map[string]any{"item_id": it.id})
}

func (s *session) itemTruncate(ev map[string]any, eid string) {
	_, it := s.itemByID(ev, eid)
	if it == nil {
		return
	}
	if it.role != "assistant" || !it.isAudio {
		s.invalid("invalid_value", "Only assistant messages with audio can be truncated.", "item_id", eid)
		return
	}
	endF, ok := ev["audio_end_ms"].(float64)
	end := int(endF)
	if !ok || end < 0 || float64(end) != endF {
		s.invalid("invalid_value", "Invalid 'audio_end_ms': expected a non-negative integer.", "audio_end_ms", eid)
		return
	}
	if end > it.audioMs {
		s.invalid("invalid_value", fmt.Sprintf("Audio content of %dms is shorter than %dms.", it.audioMs, end), "audio_end_ms", eid)
		return
	}
	it.audioMs = end
	it.text = ""
	ci, _ := ev["content_index"].(float64)
	s.emit("conversation.item.truncated", map[string]any{"item_id": it.id, "content_index": int(ci), "audio_end_ms": end})
}

func decodeEvent(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}
