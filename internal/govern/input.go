package govern

import (
	"bytes"
	"encoding/json"
)

// itemTokens is added to every committed audio item and every text event
// for the tokens that frame an item in the model's context.
const itemTokens = 4

// inputEstimate is an upper bound of the input tokens of the next
// response: the context measured by the last conversation response
// (base: its input plus its output), plus what was added since.
type inputEstimate struct {
	base      int   // input+output tokens of the last settled conversation response, +1
	baseAdded int   // added when base was measured
	added     int   // tokens the client added so far (text events, committed audio)
	bufBytes  int64 // input audio appended since the last commit or clear
	// per100ms is the input audio format's bytes per 100 ms (one token):
	// 4800 for PCM16 at 24 kHz, 800 for G.711 at 8 kHz.
	per100ms      int64
	sessionMaxOut int // the session's max_output_tokens; 0 = inf
}

// Bytes per 100 ms of the input audio formats.
const (
	pcm16Per100ms = 4800 // 24 kHz × 2 bytes
	g711Per100ms  = 800  // 8 kHz × 1 byte
)

func (e *inputEstimate) append(frame []byte) { e.bufBytes += audioBytes(frame) }

// bufTokens bounds the tokens of the audio in the input buffer.
func (e *inputEstimate) bufTokens() int {
	if e.bufBytes <= 0 {
		return 0
	}
	per := e.per100ms
	if per <= 0 {
		per = pcm16Per100ms
	}
	return int((e.bufBytes+per-1)/per) + itemTokens
}

// commit moves the buffered audio into the context.
func (e *inputEstimate) commit() {
	e.added += e.bufTokens()
	e.bufBytes = 0
}

// addText bounds the tokens a text-bearing event of n bytes adds.
func (e *inputEstimate) addText(n int) { e.added += n/4 + itemTokens }

// boundOut is the output bound of a response nothing reserved for.
func (e *inputEstimate) boundOut(def int) int {
	if e.sessionMaxOut > 0 {
		return e.sessionMaxOut
	}
	return def
}

// inputLocked is the input estimate of a response starting now: the
// context, the audio not yet committed, and the output bound of the
// session's responses that are sent or running (their output becomes
// input of anything that starts after them before base can include it).
// s.mu is held.
func (s *Session) inputLocked() int {
	n := s.in.base + s.in.added - s.in.baseAdded + s.in.bufTokens()
	for _, r := range s.pending {
		n += r.maxOut
	}
	for _, r := range s.byResp {
		n += r.maxOut
	}
	return n
}

// audioBytes is the decoded size of the base64 "audio" of an
// input_audio_buffer.append. A frame whose audio cannot be found counts
// whole (an upper bound).
func audioBytes(frame []byte) int64 {
	i := bytes.Index(frame, []byte(`"audio"`))
	if i < 0 {
		return int64(len(frame)) * 3 / 4
	}
	j := i + len(`"audio"`)
	for j < len(frame) && (frame[j] == ' ' || frame[j] == ':' || frame[j] == '\t' || frame[j] == '\n' || frame[j] == '\r') {
		j++
	}
	if j >= len(frame) || frame[j] != '"' {
		return int64(len(frame)) * 3 / 4
	}
	end := bytes.IndexByte(frame[j+1:], '"')
	if end < 0 {
		return int64(len(frame)) * 3 / 4
	}
	b64 := frame[j+1 : j+1+end]
	pad := int64(0)
	for k := len(b64) - 1; k >= 0 && pad < 2 && b64[k] == '='; k-- {
		pad++
	}
	return (int64(len(b64))*3+3)/4 - pad
}

// formatPer100ms maps a session object's input audio format (GA
// audio.input.format.type or beta input_audio_format) to bytes per 100
// ms; 0 when the object does not say.
func formatPer100ms(session json.RawMessage) int64 {
	var c struct {
		Audio *struct {
			Input *struct {
				Format *struct {
					Type string `json:"type"`
				} `json:"format"`
			} `json:"input"`
		} `json:"audio"`
		InputAudioFormat string `json:"input_audio_format"` // beta
	}
	if json.Unmarshal(session, &c) != nil {
		return 0
	}
	name := c.InputAudioFormat
	if c.Audio != nil && c.Audio.Input != nil && c.Audio.Input.Format != nil {
		name = c.Audio.Input.Format.Type
	}
	switch name {
	case "audio/pcm", "pcm16":
		return pcm16Per100ms
	case "audio/pcmu", "audio/pcma", "g711_ulaw", "g711_alaw":
		return g711Per100ms
	}
	return 0
}

// configFormat is the input format of a pinned config (PCM16 when it
// names none: the upstream default).
func configFormat(cfg json.RawMessage) int64 {
	if n := formatPer100ms(cfg); n > 0 {
		return n
	}
	return pcm16Per100ms
}
