package sim

import (
	"slices"

	"github.com/voicegate/voicegate/internal/realtime"
)

// finish ends r with status ("completed", "cancelled", "incomplete"),
// emitting the closing events, response.done with usage, and the ledger
// entry.
func (s *session) finish(r *response, status, reason string) {
	s.active = slices.DeleteFunc(s.active, func(x *response) bool { return x == r })
	it := r.item
	var out tokenSplit
	if r.fn {
		it.status = "completed"
		out.text = textTokens(len(it.name) + len(it.args))
	} else {
		// What was said is what was played: on cancellation the transcript
		// covers the chunks already emitted.
		it.text = string(r.runes[:r.tSent])
		it.status = "completed"
		if status != "completed" {
			it.status = "incomplete"
		}
		out.text = textTokens(len(it.text))
		if !r.p.textOnly {
			it.audioMs = r.sent * chunkMs
			out.audio = ceilDiv(it.audioMs, 50)
		}
		ids := map[string]any{"response_id": r.id, "item_id": it.id, "output_index": 0, "content_index": 0}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			if k != "" {
				m[k] = v
			}
			for a, b := range ids {
				m[a] = b
			}
			return m
		}
		if s.audioT != nil && r.startedA {
			if status == "completed" || status == "incomplete" {
				s.emit("output_audio_buffer.stopped", map[string]any{"response_id": r.id})
			} else {
				s.audioT.ClearAudio()
				s.emit("output_audio_buffer.cleared", map[string]any{"response_id": r.id})
			}
			if s.playing == r {
				s.playing = nil
			}
		}
		if r.p.textOnly {
			s.emit("response.output_text.done", with("text", it.text))
			s.emit("response.content_part.done", with("part", map[string]any{"type": "text", "text": it.text}))
		} else {
			s.emit("response.output_audio.done", with("", nil))
			s.emit("response.output_audio_transcript.done", with("transcript", it.text))
			s.emit("response.content_part.done", with("part", map[string]any{"type": "audio", "transcript": it.text}))
		}
	}
	s.emit("response.output_item.done", map[string]any{"response_id": r.id, "output_index": 0, "item": s.itemJSON(it, false)})
	if !r.p.oob {
		if i := s.indexOf(it.id); i >= 0 {
			s.emit("conversation.item.done", map[string]any{"previous_item_id": s.previousID(i), "item": s.itemJSON(it, false)})
		}
	}
	u := usage(r.in, r.cached, out)
	var details any
	if status != "completed" {
		details = map[string]any{"type": status, "reason": reason}
	}
	// The ledger is written first so that a client which has seen
	// response.done always finds it there.
	s.srv.ledger.add(LedgerEntry{SessionID: s.id, ResponseID: r.id, Model: s.cfg.model, Status: status, Usage: u,
		Instructions: r.p.instructions, At: s.srv.now()})
	s.emit("response.done", map[string]any{"response": s.responseJSON(r, status, details, &u)})
}

func usage(in, cached, out tokenSplit) realtime.Usage {
	u := realtime.Usage{
		InputTokens:  int64(in.text + in.audio),
		OutputTokens: int64(out.text + out.audio),
		InputTokenDetails: realtime.InputTokenDetails{
			TextTokens:   int64(in.text),
			AudioTokens:  int64(in.audio),
			CachedTokens: int64(cached.text + cached.audio),
			CachedTokensDetails: realtime.CachedTokensDetails{
				TextTokens: int64(cached.text), AudioTokens: int64(cached.audio),
			},
		},
		OutputTokenDetails: realtime.OutputTokenDetails{TextTokens: int64(out.text), AudioTokens: int64(out.audio)},
	}
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

var formatObjects = map[string]map[string]any{
	"pcm":  {"type": "audio/pcm", "rate": 24000},
	"pcmu": {"type": "audio/pcmu"},
	"pcma": {"type": "audio/pcma"},
}

var betaFormatNames = map[string]string{"pcm": "pcm16", "pcmu": "g711_ulaw", "pcma": "g711_alaw"}

// responseJSON is the response object of response.created/done.
func (s *session) responseJSON(r *response, status string, details any, u *realtime.Usage) map[string]any {
	output := []any{}
	if status != "in_progress" {
		output = append(output, s.itemJSON(r.item, false))
	}
	var conv any = s.convID
	if r.p.oob {
		conv = nil
	}
	var maxOut any = "inf"
	if r.p.maxOutput > 0 {
		maxOut = r.p.maxOutput
	}
	var usage any
	if u != nil {
		usage = u
	}
	mods := []any{"audio"}
	if r.p.textOnly {
		mods = []any{"text"}
	}
	m := map[string]any{
		"object": "realtime.response", "id": r.id, "status": status, "status_details": details,
		"output": output, "conversation_id": conv, "max_output_tokens": maxOut,
		"usage": usage, "metadata": r.p.metadata,
	}
	if s.beta {
		if !r.p.textOnly {
			mods = []any{"text", "audio"}
		}
		m["modalities"] = mods
		m["voice"] = r.p.voice
		m["output_audio_format"] = betaFormatNames[r.p.format]
		m["temperature"] = 0.8
	} else {
		m["output_modalities"] = mods
		m["audio"] = map[string]any{"output": map[string]any{"format": formatObjects[r.p.format], "voice": r.p.voice}}
	}
	return m
}
