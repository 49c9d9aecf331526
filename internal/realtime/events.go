package realtime

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// Event types the gateway acts on.
const (
	TypeError           = "error"
	TypeSessionCreated  = "session.created"
	TypeSessionUpdated  = "session.updated"
	TypeSessionUpdate   = "session.update"
	TypeResponseCreate  = "response.create"
	TypeResponseCreated = "response.created"
	TypeResponseDone    = "response.done"
	TypeResponseCancel  = "response.cancel"
)

// Response is the part of a response object (response.created /
// response.done) the gateway needs.
type Response struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// ConversationID is nil for an out-of-band response
	// (conversation "none").
	ConversationID *string `json:"conversation_id"`
	// Usage is nil in response.created and in some failed responses.
	Usage *Usage `json:"usage"`
}

// ResponseEvent is response.created or response.done.
type ResponseEvent struct {
	Type     string   `json:"type"`
	EventID  string   `json:"event_id"`
	Response Response `json:"response"`
}

// DecodeResponseEvent decodes a response.created or response.done frame.
func DecodeResponseEvent(frame []byte) (ResponseEvent, error) {
	var e ResponseEvent
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, fmt.Errorf("decode %s: %w", "response event", err)
	}
	if e.Response.ID == "" {
		return e, fmt.Errorf("decode %s: response without id", e.Type)
	}
	return e, nil
}

// SessionEvent is session.created or session.updated. Session is kept raw
// so the gateway can forward or re-emit it unchanged.
type SessionEvent struct {
	Type    string          `json:"type"`
	EventID string          `json:"event_id"`
	Session json.RawMessage `json:"session"`
}

// DecodeSessionEvent decodes a session.created or session.updated frame.
func DecodeSessionEvent(frame []byte) (SessionEvent, error) {
	var e SessionEvent
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, fmt.Errorf("decode session event: %w", err)
	}
	return e, nil
}

// SessionModel returns the "model" of a session object ("" if absent).
func SessionModel(session json.RawMessage) string {
	var s struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(session, &s)
	return s.Model
}

// ErrorPayload is the "error" object of an error event.
type ErrorPayload struct {
	Type    string  `json:"type"`
	Code    string  `json:"code,omitempty"`
	Message string  `json:"message"`
	Param   *string `json:"param,omitempty"`
	EventID string  `json:"event_id,omitempty"`
}

// ErrorEventData is a decoded error event.
type ErrorEventData struct {
	Type    string       `json:"type"`
	EventID string       `json:"event_id"`
	Error   ErrorPayload `json:"error"`
}

// DecodeErrorEvent decodes an error frame.
func DecodeErrorEvent(frame []byte) (ErrorEventData, error) {
	var e ErrorEventData
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, fmt.Errorf("decode error event: %w", err)
	}
	return e, nil
}

// ErrorEvent builds the gateway's own in-stream refusal:
// {"type":"error","event_id":…,"error":{"type":"voicegate_error","code":…,
// "message":…,"event_id":clientEventID}}; event_id inside error is omitted
// when clientEventID is empty.
func ErrorEvent(code, message, clientEventID string) []byte {
	return RefusalEvent(code, message, "", clientEventID)
}

// RefusalEvent is ErrorEvent naming the offending field: error.param is
// param, or null when it is "". It is the one builder of the gateway's
// error events.
func RefusalEvent(code, message, param, clientEventID string) []byte {
	var p *string
	if param != "" {
		p = &param
	}
	b, err := json.Marshal(struct {
		Type    string `json:"type"`
		EventID string `json:"event_id"`
		Error   struct {
			Type    string  `json:"type"`
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Param   *string `json:"param"`
			EventID string  `json:"event_id,omitempty"`
		} `json:"error"`
	}{Type: TypeError, EventID: NewID("event_"), Error: struct {
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Param   *string `json:"param"`
		EventID string  `json:"event_id,omitempty"`
	}{"voicegate_error", code, message, p, clientEventID}})
	if err != nil { // unreachable: only strings are marshalled
		panic(err)
	}
	return b
}

// ClientEventID returns the optional "event_id" of a client frame ("" when
// absent or the frame is not an object).
func ClientEventID(frame []byte) string {
	var e struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(frame, &e)
	return e.EventID
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns prefix + 21 random alphanumerics, the shape of OpenAI's
// event_, sess_, resp_, item_ and conv_ ids.
func NewID(prefix string) string {
	var b [21]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + string(b[:])
}

// RewriteErrorEventID returns the error event frame with error.event_id
// set to eventID (removed when eventID is ""), the rest kept as it was.
// A frame that is not an error event object is returned unchanged.
func RewriteErrorEventID(frame []byte, eventID string) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(frame, &ev) != nil {
		return frame
	}
	var e map[string]json.RawMessage
	if json.Unmarshal(ev["error"], &e) != nil || e == nil {
		return frame
	}
	if eventID == "" {
		delete(e, "event_id")
	} else {
		e["event_id"], _ = json.Marshal(eventID)
	}
	ev["error"], _ = json.Marshal(e)
	out, err := json.Marshal(ev)
	if err != nil {
		return frame
	}
	return out
}
