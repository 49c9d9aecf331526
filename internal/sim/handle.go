package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/realtime"
)

// handle applies one client event.
func (s *session) handle(b []byte) {
	if b64, eid, ok := scanAppend(b); ok {
		s.probeAppend(eid)
		if s.appendB64(b64) {
			return
		}
	}
	ev, err := decodeEvent(b)
	if err != nil {
		s.invalid("invalid_json", "The server could not parse the event: invalid JSON.", "", "")
		return
	}
	eid, _ := ev["event_id"].(string)
	typ, ok := ev["type"].(string)
	if !ok {
		s.invalid("invalid_event", "The 'type' field is missing.", "type", eid)
		return
	}
	switch typ {
	case "session.update", "transcription_session.update":
		raw, ok := ev["session"]
		if !ok {
			s.invalid("missing_required_parameter", "Missing required parameter: 'session'.", "session", eid)
			return
		}
		body, _ := json.Marshal(raw)
		if cerr := s.cfg.update(body, s.beta, false); cerr != nil {
			s.invalid(cerr.code, cerr.msg, cerr.param, eid)
			return
		}
		s.meter.format = s.cfg.inFormat
		if s.cfg.vad == nil {
			s.speaking = false
		}
		s.emit("session.updated", map[string]any{"session": s.cfg.view(s.beta, s.id, s.expAt)})
	case "input_audio_buffer.append":
		a, _ := ev["audio"].(string)
		pcm, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			s.invalid("invalid_value", "Invalid 'audio': not valid base64.", "audio", eid)
			return
		}
		if len(pcm) > 15<<20 {
			s.invalid("invalid_value", "Invalid 'audio': at most 15 MiB per append.", "audio", eid)
			return
		}
		s.inputAudio(pcm, s.cfg.inFormat)
	case "input_audio_buffer.commit":
		ms := len(s.buffer) / bytesPerMs(s.cfg.inFormat)
		if ms < 100 {
			s.invalid("input_audio_buffer_commit_empty", fmt.Sprintf(
				"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has %.2fms of audio.", float64(ms)), "", eid)
			return
		}
		id := s.vadItem
		if !s.speaking || id == "" {
			id = realtime.NewID("item_")
		}
		s.speaking = false
		s.commit(id)
	case "input_audio_buffer.clear":
		s.buffer = s.buffer[:0]
		s.speaking = false
		s.emit("input_audio_buffer.cleared", nil)
	case "output_audio_buffer.clear":
		if s.audioT == nil {
			s.invalid("invalid_value", "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.", "type", eid)
			return
		}
		s.clearPlayback()
	case "conversation.item.create":
		s.itemCreate(ev, eid)
	case "conversation.item.retrieve":
		s.itemRetrieve(ev, eid)
	case "conversation.item.truncate":
		s.itemTruncate(ev, eid)
	case "conversation.item.delete":
		s.itemDelete(ev, eid)
	case "response.create":
		s.responseCreate(ev, eid)
	case "response.cancel":
		id, _ := ev["response_id"].(string)
		for _, r := range s.active {
			if (id == "" && !r.p.oob) || r.id == id {
				s.finish(r, "cancelled", "client_cancelled")
				return
			}
		}
		s.invalid("response_cancel_not_active", "Cancellation failed: no active response found", "", eid)
	default:
		s.invalid("invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'output_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', 'response.create', and 'response.cancel'.", typ), "type", eid)
	}
}

// maxBufferBytes bounds the uncommitted input buffer (about 15 minutes of
// PCM16); older audio is dropped, as a VAD-less client that never commits
// would otherwise grow it without bound.
const maxBufferBytes = 15 * 60 * 1000 * 48

// appendB64 is input_audio_buffer.append on the fast path: the base64
// audio is decoded straight into the input buffer. It returns false, with
// the buffer unchanged, when the general path must handle the event
// (invalid base64, more than 15 MiB).
func (s *session) appendB64(b64 []byte) bool {
	start := len(s.buffer)
	dl := base64.StdEncoding.DecodedLen(len(b64))
	buf := s.buffer
	if cap(buf) == 0 { // room for a typical turn up front
		buf = make([]byte, 0, max(dl, 2000*bytesPerMs(s.cfg.inFormat)))
	}
	buf = slices.Grow(buf, dl)
	s.buffer = buf[:start]
	n, err := base64.StdEncoding.Decode(buf[start:start+dl], b64)
	if err != nil || n > 15<<20 {
		return false
	}
	if start+n > maxBufferBytes { // rare: trim through the general path
		s.inputAudio(slices.Clone(buf[start:start+n]), s.cfg.inFormat)
		return true
	}
	s.buffer = buf[:start+n]
	// VAD may commit (reset the buffer) mid-audio; nothing writes to the
	// buffer while it runs, so audio stays valid.
	s.detect(buf[start:start+n], s.cfg.inFormat)
	return true
}

// inputAudio appends to the input buffer and runs server VAD on it.
// format is the encoding of audio (WebRTC media is always PCM16).
func (s *session) inputAudio(audio []byte, format string) {
	if format == "pcm" && s.cfg.inFormat != "pcm" {
		// WebRTC media is PCM16 24 kHz; keep the buffer in the session's
		// format so durations and retrieved audio agree with it.
		audio = transcodePCM(audio, s.cfg.inFormat)
	}
	format = s.cfg.inFormat
	s.buffer = append(s.buffer, audio...)
	if len(s.buffer) > maxBufferBytes {
		s.buffer = append(s.buffer[:0], s.buffer[len(s.buffer)-maxBufferBytes:]...)
	}
	s.detect(audio, format)
}

// detect runs server VAD over audio just added to the input buffer.
func (s *session) detect(audio []byte, format string) {
	vad := s.cfg.vad
	if vad == nil {
		return
	}
	m := &s.meter
	if m.format != format {
		m.format = format
	}
	level := speechRMS(vad.threshold)
	m.feed(audio, func(rms float64) {
		s.frames++
		end := s.frames * 20
		if rms >= level {
			s.silence = 0
			if !s.speaking {
				s.speaking = true
				s.vadItem = realtime.NewID("item_")
				s.emit("input_audio_buffer.speech_started", map[string]any{
					"audio_start_ms": max(0, end-20-vad.prefixPaddingMs), "item_id": s.vadItem})
				if vad.interruptResponse {
					for _, r := range s.active {
						if !r.p.oob {
							s.finish(r, "cancelled", "turn_detected")
							break
						}
					}
				}
			}
			return
		}
		if !s.speaking {
			return
		}
		s.silence += 20
		if s.silence < vad.silenceMs {
			return
		}
		s.speaking = false
		s.emit("input_audio_buffer.speech_stopped", map[string]any{"audio_end_ms": end - s.silence + min(s.silence, 100), "item_id": s.vadItem})
		s.commit(s.vadItem)
		if vad.createResponse && !s.cfg.transcribe && !s.hasDefaultActive() {
			s.startResponse(s.defaultResponseParams(), "")
		}
	})
}

// commit turns the input buffer into a user audio item.
func (s *session) commit(id string) {
	it := &item{id: id, typ: "message", role: "user", status: "completed", isAudio: true, noTrans: true}
	it.audioMs = len(s.buffer) / bytesPerMs(s.cfg.inFormat)
	if n := len(s.buffer); cap(s.buffer) <= n+n/2 {
		// Hand the buffer to the item rather than copy it (a turn is tens
		// of kilobytes); the next append starts a new one.
		it.audio = s.buffer[:n:n]
		s.buffer = nil
	} else { // mostly empty: keep it, store a tight copy
		it.audio = append([]byte(nil), s.buffer...)
		s.buffer = s.buffer[:0]
	}
	s.vadItem = ""
	prev := any(nil)
	if n := len(s.items); n > 0 {
		prev = s.items[n-1].id
	}
	s.emit("input_audio_buffer.committed", map[string]any{"previous_item_id": prev, "item_id": id})
	s.addItem(it, "")
	if s.cfg.transcriber != "" {
		it.noTrans = false
		it.text = fmt.Sprintf("Simulated transcript of %.1f seconds of audio.", float64(it.audioMs)/1000)
		s.emit("conversation.item.input_audio_transcription.delta", map[string]any{"item_id": id, "content_index": 0, "delta": it.text})
		u := transcriptionUsage(s.cfg.transcriber, it.audioMs, it.text)
		// Billed before the event is sent, like response.done.
		s.srv.ledger.add(LedgerEntry{SessionID: s.id, ResponseID: TranscriptionResponseID(id), Kind: LedgerTranscription,
			ItemID: id, Model: s.cfg.transcriber, Status: "completed", Usage: u.Wire(), Transcription: &u, At: s.srv.now()})
		s.emit("conversation.item.input_audio_transcription.completed", map[string]any{
			"item_id": id, "content_index": 0, "transcript": it.text, "usage": u})
	}
}

// transcriptionUsage is the deterministic usage of transcribing ms of
// input audio into transcript with model: gpt-4o-transcribe and
// gpt-4o-mini-transcribe models (any "gpt-4o…transcribe…" name) are
// token-billed, 10 audio tokens per second of input (⌈ms/100⌉) and
// ⌈chars/4⌉ text tokens out; every other model (whisper-1) is
// duration-billed, ⌈ms/1000⌉ seconds.
func transcriptionUsage(model string, ms int, transcript string) realtime.TranscriptionUsage {
	if !strings.HasPrefix(model, "gpt-4o") || !strings.Contains(model, "transcribe") {
		return realtime.TranscriptionUsage{Type: realtime.TranscriptionUsageDuration, Seconds: float64(ceilDiv(ms, 1000))}
	}
	in, out := int64(ceilDiv(ms, 100)), int64(textTokens(len(transcript)))
	return realtime.TranscriptionUsage{
		Type: realtime.TranscriptionUsageTokens, TotalTokens: in + out, InputTokens: in, OutputTokens: out,
		InputTokenDetails: realtime.TranscriptionInputTokenDetail{AudioTokens: in},
	}
}

func (s *session) hasDefaultActive() bool {
	for _, r := range s.active {
		if !r.p.oob {
			return true
		}
	}
	return false
}
