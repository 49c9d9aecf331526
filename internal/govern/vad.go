package govern

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
)

// Server turn detection (server_vad, semantic_vad) with create_response
// starts a response upstream whenever it commits a turn, with no
// response.create the gateway could reserve for or clamp. The governor
// mediates it instead: every session config it lets upstream says
// create_response:false, and when upstream commits a turn the client did
// not commit itself, the governor reserves and sends the response.create
// (reserve, like any client turn). Barge-in is unchanged: upstream still
// cancels the running response on speech (interrupt_response). A turn
// committed while a conversation response is still running waits for its
// response.done. The client keeps seeing create_response as it asked.

// turnDetection is the session's turn-detection state; guarded by s.mu.
type turnDetection struct {
	// mediate is set while the client wants responses on committed turns
	// (turn detection on, create_response not false): the governor then
	// starts them.
	mediate bool
	// clientCommits counts client commits forwarded and not yet
	// confirmed: their input_audio_buffer.committed is not a VAD turn.
	clientCommits int
	// waiting is 1 when a committed turn waits for the running
	// conversation response to finish.
	waiting int
}

// tdPath is where a session object keeps its turn detection.
func tdPath(beta bool) []string {
	if beta {
		return []string{"turn_detection"}
	}
	return []string{"audio", "input", "turn_detection"}
}

// Pin returns the session.update that applies the session's pinned config
// upstream, given the session object of upstream's session.created, and
// its event_id; a nil frame when nothing needs to be sent. Turn detection
// that would start responses on its own is pinned with
// create_response:false (mediated).
func (s *Session) Pin(created json.RawMessage) (frame []byte, eventID string, err error) {
	cfg := map[string]json.RawMessage{}
	if len(s.rec.Config) > 0 {
		if err := json.Unmarshal(policy.UpstreamConfig(s.rec.Config), &cfg); err != nil {
			return nil, "", fmt.Errorf("pinned config: %w", err)
		}
	}
	if cfg == nil {
		cfg = map[string]json.RawMessage{}
	}
	transcription := isTranscription(cfg)
	if !transcription {
		td, set := getPath(cfg, tdPath(false)...)
		if !set {
			// The upstream default (server_vad with create_response) is in
			// force: pin it explicitly, mediated.
			td, _ = getPath(decodeObject(created), tdPath(s.h.Beta)...)
		}
		if mediated, ok := mediatedTD(td); ok {
			setPath(cfg, mediated, tdPath(false)...)
			s.mu.Lock()
			s.vad.mediate = true
			s.mu.Unlock()
		}
	}
	if len(cfg) == 0 {
		return nil, "", nil
	}
	var session json.RawMessage
	if s.h.Beta {
		// The beta session.update names no model: it is in the URL and
		// cannot change.
		delete(cfg, "model")
		if session, err = policy.ToBeta(mustJSON(cfg)); err != nil {
			return nil, "", err
		}
	} else {
		if _, ok := cfg["type"]; !ok {
			cfg["type"] = json.RawMessage(`"realtime"`)
		}
		session = mustJSON(cfg)
	}
	eventID = realtime.NewID("vg_pin_")
	frame, err = json.Marshal(map[string]any{"type": realtime.TypeSessionUpdate, "event_id": eventID, "session": session})
	return frame, eventID, err
}

// mediatedTD returns td with create_response false when td is a turn
// detection that would create responses (ok false otherwise: null, absent,
// or create_response already false).
func mediatedTD(td json.RawMessage) (json.RawMessage, bool) {
	m := decodeObject(td)
	if m == nil {
		return nil, false
	}
	if c, ok := m["create_response"]; ok && string(c) == "false" {
		return nil, false
	}
	m["create_response"] = json.RawMessage("false")
	return mustJSON(m), true
}

// sessionUpdate applies a client session.update to the turn-detection
// state and the output bound, rewriting its turn detection to be mediated
// when it would create responses.
func (s *Session) sessionUpdate(frame []byte) []byte {
	ev := decodeObject(frame)
	session := decodeObject(ev["session"])
	if session == nil {
		return frame
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := maxTokensValue(session["max_output_tokens"]); m >= 0 {
		s.in.sessionMaxOut = m
	} else if m := maxTokensValue(session["max_response_output_tokens"]); m >= 0 {
		s.in.sessionMaxOut = m
	}
	if n := formatPer100ms(ev["session"]); n > 0 {
		s.in.per100ms = n
	}
	if isTranscription(session) || string(ev["type"]) == `"transcription_session.update"` {
		return frame
	}
	td, set := getPath(session, tdPath(s.h.Beta)...)
	if !set {
		return frame
	}
	mediated, ok := mediatedTD(td)
	s.vad.mediate = ok
	if !ok {
		if string(td) == "null" {
			s.vad.waiting = 0
		}
		return frame
	}
	setPath(session, mediated, tdPath(s.h.Beta)...)
	ev["session"] = mustJSON(session)
	return mustJSON(ev)
}

// sessionConfig learns from upstream's session.created or session.updated
// (the effective config: model, input format, output bound, transcription
// model) and gives the client the turn detection it asked for.
func (s *Session) sessionConfig(ctx context.Context, frame []byte) []byte {
	ev := decodeObject(frame)
	if ev == nil {
		return frame
	}
	raw := ev["session"]
	model := realtime.SessionModel(raw)
	per := formatPer100ms(raw)
	trModel, trSet := transcriptionModel(raw)
	session := decodeObject(raw)
	s.mu.Lock()
	if model != "" {
		s.model = model
	}
	if per > 0 {
		s.in.per100ms = per
	}
	if session != nil {
		if m := maxTokensValue(session["max_output_tokens"]); m >= 0 {
			s.in.sessionMaxOut = m
		} else if m := maxTokensValue(session["max_response_output_tokens"]); m >= 0 {
			s.in.sessionMaxOut = m
		}
	}
	if trSet {
		s.tr.known, s.tr.model = true, trModel
	}
	mediate := s.vad.mediate
	s.mu.Unlock()
	if s.h.Sideband {
		if session != nil {
			s.correct(ctx, session)
		}
		return frame
	}
	if session == nil {
		return frame
	}
	changed := false
	if mediate {
		td, ok := getPath(session, tdPath(s.h.Beta)...)
		if m := decodeObject(td); ok && m != nil {
			m["create_response"] = json.RawMessage("true")
			setPath(session, mustJSON(m), tdPath(s.h.Beta)...)
			changed = true
		}
	}
	// Instructions the mint pinned are the operator's prompt: they never
	// reach the client.
	if _, pinned := decodeObject(s.rec.Config)["instructions"]; pinned {
		if _, ok := session["instructions"]; ok {
			delete(session, "instructions")
			changed = true
		}
	}
	if !changed {
		return frame
	}
	ev["session"] = mustJSON(session)
	return mustJSON(ev)
}

// committed handles input_audio_buffer.committed: the buffered audio
// joins the context (its transcription holds pass to the item), and a
// turn the server's turn detection committed gets its response from the
// governor.
func (s *Session) committed(ctx context.Context, frame []byte) {
	var ev struct {
		ItemID string `json:"item_id"`
	}
	_ = json.Unmarshal(frame, &ev)
	s.mu.Lock()
	s.in.commit()
	s.transcriptionCommittedLocked(ev.ItemID)
	s.setIdleLocked()
	if s.vad.clientCommits > 0 {
		s.vad.clientCommits--
		s.mu.Unlock()
		return
	}
	if !s.vad.mediate || s.gone {
		s.mu.Unlock()
		return
	}
	if s.conversationBusyLocked() {
		s.vad.waiting = 1
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.startTurn(ctx)
}

// conversationBusyLocked reports whether a conversation response is sent
// or running; s.mu is held.
func (s *Session) conversationBusyLocked() bool {
	for _, r := range s.pending {
		if r.conv {
			return true
		}
	}
	for _, r := range s.byResp {
		if r.conv {
			return true
		}
	}
	return false
}

// startWaitingTurn starts the turn that waited for a conversation
// response to finish.
func (s *Session) startWaitingTurn(ctx context.Context) {
	s.mu.Lock()
	if s.vad.waiting == 0 || s.gone || !s.vad.mediate || s.conversationBusyLocked() {
		s.mu.Unlock()
		return
	}
	s.vad.waiting = 0
	s.mu.Unlock()
	s.startTurn(ctx)
}

// startTurn reserves for the response of a committed turn and sends it.
// A turn the budget cannot afford is answered with a budget_exceeded error
// event (and the session ends when the budget is spent).
func (s *Session) startTurn(ctx context.Context) {
	fwd, ref := s.reserve(ctx, []byte(`{"type":"response.create"}`), "", true)
	if ref != nil {
		s.toClient(ref.Event())
		return
	}
	if err := s.h.Upstream(ctx, fwd); err != nil {
		s.g.logger().Debug("mediated response.create not sent", "session_id", s.rec.ID, "err", err)
	}
}

// commitFailed handles the error of a client commit that upstream refused
// (input_audio_buffer_commit_empty): no committed event will answer it.
func (s *Session) commitFailed() {
	s.mu.Lock()
	if s.vad.clientCommits > 0 {
		s.vad.clientCommits--
	}
	s.mu.Unlock()
}

func isTranscription(session map[string]json.RawMessage) bool {
	return string(session["type"]) == `"transcription"`
}

// decodeObject decodes a JSON object into its members (nil when raw is
// not an object).
func decodeObject(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// getPath returns the member at path of a nested object and whether it is
// present (a present null is "null").
func getPath(m map[string]json.RawMessage, path ...string) (json.RawMessage, bool) {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			return v, true
		}
		if m = decodeObject(v); m == nil {
			return nil, false
		}
	}
	return nil, false
}

// setPath sets the member at path, creating the objects on the way (a
// null or non-object on the way is replaced).
func setPath(m map[string]json.RawMessage, v json.RawMessage, path ...string) {
	if len(path) == 1 {
		m[path[0]] = v
		return
	}
	child := decodeObject(m[path[0]])
	if child == nil {
		child = map[string]json.RawMessage{}
	}
	setPath(child, v, path[1:]...)
	m[path[0]] = mustJSON(child)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil { // unreachable: raw messages and maps of them
		panic(err)
	}
	return b
}
