package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/realtime"
)

// responseParams is a response's effective configuration.
type responseParams struct {
	oob          bool // conversation "none"
	textOnly     bool
	instructions string
	tools        []tool
	toolChoice   string
	maxOutput    int // 0 = inf
	metadata     any
	format       string
	voice        string
	input        []*item // context when hasInput
	hasInput     bool
}

// response is an active response being emitted.
type response struct {
	id       string
	p        responseParams
	item     *item
	fn       bool
	runes    []rune // planned text (after max_output_tokens clipping)
	chunks   int    // paced steps (audio chunks, or text pieces)
	sent     int
	tSent    int  // runes of text already sent as deltas
	limited  bool // clipped by max_output_tokens
	start    time.Time
	in       tokenSplit
	cached   tokenSplit
	startedA bool // output_audio_buffer.started emitted
}

// tokenSplit is a token count split by modality.
type tokenSplit struct{ text, audio int }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// textTokens is about one token per 4 characters (bytes).
func textTokens(chars int) int { return ceilDiv(chars, 4) }

// outputAudioMs is the audio duration of a reply text: 60 ms per
// character, clamped to 0.5–30 s, rounded up to whole chunks.
func outputAudioMs(text string) int {
	ms := 60 * utf8.RuneCountInString(text)
	ms = min(max(ms, 500), 30000)
	return ceilDiv(ms, chunkMs) * chunkMs
}

func (s *session) defaultResponseParams() responseParams {
	return responseParams{
		textOnly: s.cfg.textOnly, instructions: s.cfg.instructions, tools: s.cfg.tools,
		toolChoice: s.cfg.toolChoice, maxOutput: s.cfg.maxOutput, format: s.cfg.outFormat, voice: s.cfg.voice,
	}
}

func (s *session) responseCreate(ev map[string]any, eid string) {
	p := s.defaultResponseParams()
	rp, _ := ev["response"].(map[string]any)
	if rp != nil {
		if c, ok := rp["conversation"]; ok && c != nil {
			switch c {
			case "none":
				p.oob = true
			case "auto":
			default:
				s.invalid("invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'auto' and 'none'.", c), "response.conversation", eid)
				return
			}
		}
		mods, ok := rp["output_modalities"].([]any)
		if !ok {
			mods, ok = rp["modalities"].([]any)
		}
		if ok {
			p.textOnly = true
			for _, m := range mods {
				p.textOnly = p.textOnly && m != "audio"
			}
		}
		if v, ok := rp["instructions"].(string); ok {
			p.instructions = v
		}
		var err *configError
		if v, ok := rp["tools"]; ok {
			if p.tools, err = parseTools(v, "response.tools"); err != nil {
				s.invalid(err.code, err.msg, err.param, eid)
				return
			}
		}
		if v, ok := rp["tool_choice"]; ok {
			if p.toolChoice, err = parseToolChoice(v, "response.tool_choice"); err != nil {
				s.invalid(err.code, err.msg, err.param, eid)
				return
			}
		}
		mv, ok := rp["max_output_tokens"]
		if !ok {
			mv, ok = rp["max_response_output_tokens"]
		}
		if ok {
			if p.maxOutput, err = parseMaxTokens(mv, "response.max_output_tokens"); err != nil {
				s.invalid(err.code, err.msg, err.param, eid)
				return
			}
		}
		if md, ok := rp["metadata"].(map[string]any); ok {
			if len(md) > 16 {
				s.invalid("invalid_value", "Invalid 'response.metadata': at most 16 pairs.", "response.metadata", eid)
				return
			}
			p.metadata = md
		}
		if out := obj(rp, "audio", "output"); out != nil {
			if f, ok := out["format"]; ok {
				if p.format, err = formatName(f, "response.audio.output.format"); err != nil {
					s.invalid(err.code, err.msg, err.param, eid)
					return
				}
			}
			if v, ok := out["voice"].(string); ok {
				p.voice = v
			}
		}
		if v, ok := rp["voice"].(string); ok {
			p.voice = v
		}
		if v, ok := rp["output_audio_format"].(string); ok {
			p.format, _ = formatName(betaFormat(v), "")
		}
		if in, ok := rp["input"].([]any); ok {
			p.hasInput = true
			for i, x := range in {
				m, _ := x.(map[string]any)
				if m["type"] == "item_reference" {
					id, _ := m["id"].(string)
					j := s.indexOf(id)
					if j < 0 {
						s.invalid("invalid_value", "Item with id '"+id+"' not found.", fmt.Sprintf("response.input[%d].id", i), eid)
						return
					}
					p.input = append(p.input, s.items[j])
					continue
				}
				it, msg, param := s.parseItem(m)
				if it == nil {
					s.invalid("invalid_value", msg, "response.input."+param, eid)
					return
				}
				p.input = append(p.input, it)
			}
		}
	}
	if !p.oob {
		for _, r := range s.active {
			if !r.oob() {
				s.invalid("conversation_already_has_active_response", "Conversation already has an active response in progress: "+r.id+
					". Wait until the response is finished before creating a new one.", "", eid)
				return
			}
		}
	}
	s.startResponse(p, eid)
}

func (r *response) oob() bool { return r.p.oob }

// replyText is the deterministic assistant reply (see doc.go).
func replyText(last *item, turn int) string {
	switch {
	case last == nil:
		return fmt.Sprintf("This is simulated reply number %d.", turn)
	case last.typ == "function_call_output":
		return "The tool returned: " + clip(last.output, 120)
	case last.typ == "message" && last.role == "user" && last.hasText && !last.isAudio:
		return "You said: " + clip(last.text, 200)
	case last.typ == "message" && last.role == "user" && last.isAudio:
		return fmt.Sprintf("This is simulated reply number %d to %.1f seconds of audio.", turn, float64(last.audioMs)/1000)
	}
	return fmt.Sprintf("This is simulated reply number %d.", turn)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// pickTool applies the tool-call rule (see doc.go).
func pickTool(p responseParams, last *item) (tool, bool) {
	if len(p.tools) == 0 || p.toolChoice == "none" || last == nil || last.typ == "function_call_output" {
		return tool{}, false
	}
	switch {
	case p.toolChoice == "required":
		return p.tools[0], true
	case strings.HasPrefix(p.toolChoice, "fn:"):
		name := p.toolChoice[3:]
		for _, t := range p.tools {
			if t.name == name {
				return t, true
			}
		}
		return tool{}, false
	}
	if last.typ != "message" || last.role != "user" || !last.hasText {
		return tool{}, false
	}
	text := strings.ToLower(last.text)
	for _, t := range p.tools {
		if strings.Contains(text, strings.ToLower(t.name)) || strings.Contains(text, strings.ReplaceAll(strings.ToLower(t.name), "_", " ")) {
			return t, true
		}
	}
	return tool{}, false
}

// startResponse emits response.created and the response's opening events,
// then leaves the paced part to advance.
func (s *session) startResponse(p responseParams, eid string) {
	ctx := s.items
	if p.hasInput {
		ctx = p.input
	}
	r := &response{id: realtime.NewID("resp_"), p: p}
	s.cfg.modelLocked = true // the model is fixed once it has answered
	r.in.text = textTokens(len(p.instructions))
	for _, it := range ctx {
		t := it.tokens()
		r.in.text += t.text
		r.in.audio += t.audio
	}
	if !p.oob {
		r.cached = tokenSplit{min(s.prevIn.text, r.in.text), min(s.prevIn.audio, r.in.audio)}
		s.prevIn = r.in
		s.turn++
	}
	var last *item
	if len(ctx) > 0 {
		last = ctx[len(ctx)-1]
	}
	if t, ok := pickTool(p, last); ok {
		r.fn = true
		r.item = &item{id: realtime.NewID("item_"), typ: "function_call", status: "in_progress",
			callID: "call_" + realtime.NewID("")[:16], name: t.name, args: t.args}
	} else {
		text := replyText(last, s.turn)
		r.item = &item{id: realtime.NewID("item_"), typ: "message", role: "assistant", status: "in_progress", isAudio: !p.textOnly}
		r.plan(text)
	}
	s.active = append(s.active, r)
	s.emit("response.created", map[string]any{"response": s.responseJSON(r, "in_progress", nil, nil)})
	s.emit("rate_limits.updated", map[string]any{"rate_limits": []any{
		map[string]any{"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
		map[string]any{"name": "tokens", "limit": 40000, "remaining": 40000 - min(40000, r.in.text+r.in.audio), "reset_seconds": 2.265},
	}})
	s.emit("response.output_item.added", map[string]any{"response_id": r.id, "output_index": 0, "item": s.itemJSON(r.item, false)})
	if !p.oob {
		s.addItem(r.item, "")
	}
	if r.fn {
		s.emit("response.function_call_arguments.delta", map[string]any{"response_id": r.id, "item_id": r.item.id, "output_index": 0, "call_id": r.item.callID, "delta": r.item.args})
		s.emit("response.function_call_arguments.done", map[string]any{"response_id": r.id, "item_id": r.item.id, "output_index": 0, "call_id": r.item.callID, "name": r.item.name, "arguments": r.item.args})
		s.finish(r, "completed", "")
		return
	}
	part := map[string]any{"type": "audio", "transcript": ""}
	if p.textOnly {
		part = map[string]any{"type": "text", "text": ""}
	}
	s.emit("response.content_part.added", map[string]any{"response_id": r.id, "item_id": r.item.id, "output_index": 0, "content_index": 0, "part": part})
	r.start = time.Now()
}

// plan fixes the response's text and step count, clipping to
// max_output_tokens: output tokens are text ⌈chars/4⌉ plus audio 20/s.
func (r *response) plan(text string) {
	runes := []rune(text)
	if r.p.textOnly {
		if r.p.maxOutput > 0 && textTokens(len(text)) > r.p.maxOutput {
			for textTokens(len(string(runes))) > r.p.maxOutput {
				runes = runes[:len(runes)-1]
			}
			r.limited = true
		}
		r.runes = runes
		r.chunks = ceilDiv(len(runes), 20)
		return
	}
	chunks := outputAudioMs(text) / chunkMs
	if r.p.maxOutput > 0 {
		for k := chunks; k >= 0; k-- {
			n := len(runes) * k / chunks
			if textTokens(len(string(runes[:n])))+k*chunkMs/50 <= r.p.maxOutput {
				if k < chunks {
					r.limited = true
					runes = runes[:n]
				}
				chunks = k
				break
			}
		}
	}
	r.runes = runes
	r.chunks = chunks
}

// pendingText returns the transcript due by the current step that has not
// been sent, cut after the last space (word-level deltas, as upstream
// sends; about one delta per 300 ms of audio) unless this is the last step.
func (r *response) pendingText() string {
	upTo := r.textUpTo(r.sent)
	if r.sent < r.chunks && !r.p.textOnly {
		for upTo > r.tSent && r.runes[upTo-1] != ' ' {
			upTo--
		}
	}
	if upTo <= r.tSent {
		return ""
	}
	d := string(r.runes[r.tSent:upTo])
	r.tSent = upTo
	return d
}

// textUpTo is the text emitted after step i.
func (r *response) textUpTo(i int) int {
	if r.chunks == 0 {
		return 0
	}
	return len(r.runes) * i / r.chunks
}

func (s *session) nextDue() (time.Time, bool) {
	var due time.Time
	for _, r := range s.active {
		d := r.start.Add(time.Duration(r.sent) * chunkMs * time.Millisecond)
		if due.IsZero() || d.Before(due) {
			due = d
		}
	}
	return due, !due.IsZero()
}

// advance emits every step that is due at now; a zero now (fast pace)
// emits one step of each active response.
func (s *session) advance(now time.Time) {
	for _, r := range append([]*response(nil), s.active...) {
		for !s.aborted && s.isActive(r) {
			if !now.IsZero() && r.start.Add(time.Duration(r.sent)*chunkMs*time.Millisecond).After(now) {
				break
			}
			if r.sent == r.chunks {
				status, reason := "completed", ""
				if r.limited {
					status, reason = "incomplete", "max_output_tokens"
				}
				s.finish(r, status, reason)
				break
			}
			if probe := s.srv.stepLate; probe != nil && !now.IsZero() {
				probe(time.Since(r.start.Add(time.Duration(r.sent) * chunkMs * time.Millisecond)))
			}
			s.step(r)
			if now.IsZero() {
				break
			}
		}
	}
}

func (s *session) isActive(r *response) bool {
	for _, x := range s.active {
		if x == r {
			return true
		}
	}
	return false
}

// step emits one chunk: transcript (or text) delta and audio.
func (s *session) step(r *response) {
	i := r.sent
	r.sent++
	delta := r.pendingText()
	if r.p.textOnly {
		if delta != "" {
			s.emit("response.output_text.delta", map[string]any{"response_id": r.id, "item_id": r.item.id, "output_index": 0, "content_index": 0, "delta": delta})
		}
		return
	}
	if delta != "" {
		s.send(s.transcriptDelta(r, delta))
	}
	if s.audioT != nil {
		if !r.startedA {
			r.startedA = true
			s.playing = r
			s.emit("output_audio_buffer.started", map[string]any{"response_id": r.id})
		}
		if err := s.audioT.WriteAudio(s.ctx, s.srv.audio.pcm[i%bankChunks]); err != nil {
			s.srv.log.Debug("sim: write audio", "session", s.id, "err", err)
		}
	} else {
		s.audioDelta(r, i)
	}
	if i == 0 && s.srv.opts.Faults.DropMidResponse {
		s.abort()
	}
}

// audioDelta sends an output audio delta built without reflection: it is
// the hot path of every session. On a batching WebSocket with no sideband
// observer and no fault injection, the frame is assembled in the batch
// buffer from the event's head and the precomputed base64 chunk, so the
// 12.8 kB chunk is copied once.
func (s *session) audioDelta(r *response, i int) {
	typ := "response.output_audio.delta"
	if s.beta {
		typ = "response.audio.delta"
	}
	if s.aborted {
		return
	}
	chunk := s.srv.audio.b64[r.p.format][i%bankChunks]
	const tail = `"}`
	// The WebSocket transport copies the frame before Write returns, so its
	// buffer is reused (send copies it for sideband observers); other
	// transports may keep the slice and get a fresh one.
	t, ws := s.t.(*wsTransport)
	var b []byte
	if ws {
		b = s.scratch[:0]
	}
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","event_id":"`...)
	b = s.appendDeltaID(b, r, i)
	b = append(b, `","response_id":"`...)
	b = append(b, r.id...)
	b = append(b, `","item_id":"`...)
	b = append(b, r.item.id...)
	b = append(b, `","output_index":0,"content_index":0,"delta":"`...)
	if ws && t.bc != nil && s.srv.opts.Faults == (Faults{}) && !s.observed() {
		s.scratch = b
		if err := t.bc.writeText3(s.ctx, b, chunk, tail); err != nil {
			s.srv.log.Debug("sim: write event", "session", s.id, "err", err)
		}
		s.sent++
		return
	}
	b = append(b, chunk...)
	b = append(b, tail...)
	if ws {
		s.scratch = b
	}
	s.send(b)
}

// transcriptDelta builds response.output_audio_transcript.delta by hand,
// like audioDelta.
func (s *session) transcriptDelta(r *response, delta string) []byte {
	typ := "response.output_audio_transcript.delta"
	if s.beta {
		typ = "response.audio_transcript.delta"
	}
	q, _ := json.Marshal(delta) // a string always marshals
	b := make([]byte, 0, len(q)+200)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","event_id":"`...)
	b = append(b, realtime.NewID("event_")...)
	b = append(b, `","response_id":"`...)
	b = append(b, r.id...)
	b = append(b, `","item_id":"`...)
	b = append(b, r.item.id...)
	b = append(b, `","output_index":0,"content_index":0,"delta":`...)
	b = append(b, q...)
	b = append(b, '}')
	return b
}

// clearPlayback handles output_audio_buffer.clear (WebRTC).
func (s *session) clearPlayback() {
	id := any(nil)
	if s.playing != nil {
		id = s.playing.id
		s.playing = nil
	}
	s.audioT.ClearAudio()
	s.emit("output_audio_buffer.cleared", map[string]any{"response_id": id})
}
