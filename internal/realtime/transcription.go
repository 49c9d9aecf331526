package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/voicegate/voicegate/internal/store"
)

// Input audio transcription events.
const (
	TypeInputTranscriptionCompleted = "conversation.item.input_audio_transcription.completed"
)

// Kinds of transcription usage ("type" of the usage object).
const (
	TranscriptionUsageTokens   = "tokens"
	TranscriptionUsageDuration = "duration"
)

// maxTranscriptionSeconds bounds a duration usage (a day of audio); more
// is a malformed event, not a bill. Likewise maxTranscriptionTokens bounds
// each token count (and keeps their sums far from overflow).
const (
	maxTranscriptionSeconds = 86_400
	maxTranscriptionTokens  = 1 << 40
)

// TranscriptionUsage is the usage of one input audio transcription, in
// either shape the server sends: token-billed models (gpt-4o-transcribe,
// gpt-4o-mini-transcribe) send {"type":"tokens",…}, duration-billed models
// (whisper-1) send {"type":"duration","seconds":N}.
type TranscriptionUsage struct {
	Type string `json:"type"`
	// Token-billed.
	TotalTokens       int64                         `json:"total_tokens"`
	InputTokens       int64                         `json:"input_tokens"`
	InputTokenDetails TranscriptionInputTokenDetail `json:"input_token_details"`
	OutputTokens      int64                         `json:"output_tokens"`
	// Duration-billed: seconds of input audio.
	Seconds float64 `json:"seconds"`
}

// MarshalJSON writes the wire shape of the usage's type: the token fields
// for "tokens", only the seconds for "duration".
func (u TranscriptionUsage) MarshalJSON() ([]byte, error) {
	switch u.Type {
	case TranscriptionUsageTokens:
		type tokens TranscriptionUsage
		return json.Marshal(struct {
			tokens
			Seconds float64 `json:"seconds,omitzero"`
		}{tokens: tokens(u), Seconds: u.Seconds})
	case TranscriptionUsageDuration:
		return json.Marshal(struct {
			Type    string  `json:"type"`
			Seconds float64 `json:"seconds"`
		}{u.Type, u.Seconds})
	}
	type plain TranscriptionUsage
	return json.Marshal(plain(u))
}

// TranscriptionInputTokenDetail splits the input tokens of a token-billed
// transcription into the prompt text and the audio.
type TranscriptionInputTokenDetail struct {
	TextTokens  int64 `json:"text_tokens"`
	AudioTokens int64 `json:"audio_tokens"`
}

// TranscriptionCompleted is conversation.item.input_audio_transcription.completed
// as far as metering needs it. Usage is nil when the server sent none.
type TranscriptionCompleted struct {
	Type         string          `json:"type"`
	EventID      string          `json:"event_id"`
	ItemID       string          `json:"item_id"`
	ContentIndex int             `json:"content_index"`
	Usage        json.RawMessage `json:"usage"`
}

// DecodeTranscriptionCompleted decodes the event; it fails without an
// item id. Its usage is left raw: see DecodeTranscriptionUsage.
func DecodeTranscriptionCompleted(frame []byte) (TranscriptionCompleted, error) {
	var e TranscriptionCompleted
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, fmt.Errorf("decode transcription completed: %w", err)
	}
	if e.ItemID == "" {
		return e, errors.New("decode transcription completed: no item_id")
	}
	if isNull(e.Usage) {
		e.Usage = nil
	}
	return e, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// DecodeTranscriptionUsage decodes and checks a transcription usage object.
// An unknown type, a token count that is negative or absurd, or a duration that is not a finite
// number of seconds below a day is an error (the caller logs it; the
// transcription is then not metered).
func DecodeTranscriptionUsage(raw []byte) (TranscriptionUsage, error) {
	var u TranscriptionUsage
	if err := json.Unmarshal(raw, &u); err != nil {
		return u, fmt.Errorf("decode transcription usage: %w", err)
	}
	switch u.Type {
	case TranscriptionUsageTokens:
		for _, n := range []int64{u.TotalTokens, u.InputTokens, u.OutputTokens,
			u.InputTokenDetails.TextTokens, u.InputTokenDetails.AudioTokens} {
			if n < 0 || n > maxTranscriptionTokens {
				return u, fmt.Errorf("decode transcription usage: token count %d out of range", n)
			}
		}
	case TranscriptionUsageDuration:
		if math.IsNaN(u.Seconds) || u.Seconds < 0 || u.Seconds > maxTranscriptionSeconds {
			return u, fmt.Errorf("decode transcription usage: duration %v s out of range", u.Seconds)
		}
	default:
		return u, fmt.Errorf("decode transcription usage: unknown type %q", u.Type)
	}
	return u, nil
}

// BilledSeconds is the billed duration of a duration usage: whole seconds,
// rounded up (the server reports ⌈seconds of buffer since the previous
// commit⌉; a fractional value is rounded up the same way).
func (u TranscriptionUsage) BilledSeconds() int64 {
	if u.Type != TranscriptionUsageDuration || !(u.Seconds > 0) {
		return 0
	}
	return int64(math.Ceil(min(u.Seconds, maxTranscriptionSeconds)))
}

// Flat converts the usage into the store's flat record. Tokens: input
// text and audio tokens as detailed, input tokens the details do not
// account for counted as audio (the dearer input, so an undetailed usage is
// never under-billed), output tokens as text. Duration: AudioSeconds.
func (u TranscriptionUsage) Flat() store.Usage {
	if u.Type == TranscriptionUsageDuration {
		return store.Usage{AudioSeconds: u.BilledSeconds()}
	}
	d := u.InputTokenDetails
	in := max(u.InputTokens, d.TextTokens+d.AudioTokens)
	audio := in - d.TextTokens
	total := max(u.TotalTokens, in+u.OutputTokens)
	return store.Usage{
		TotalTokens:      total,
		InputTokens:      in,
		OutputTokens:     u.OutputTokens,
		InputTextTokens:  d.TextTokens,
		InputAudioTokens: audio,
		OutputTextTokens: u.OutputTokens,
	}
}

// Wire is a token usage in the response usage shape (input split into
// text and audio as Flat does, output tokens as text); a duration usage
// has no tokens and gives the zero Usage.
func (u TranscriptionUsage) Wire() Usage {
	if u.Type != TranscriptionUsageTokens {
		return Usage{}
	}
	f := u.Flat()
	return Usage{
		TotalTokens: f.TotalTokens, InputTokens: f.InputTokens, OutputTokens: f.OutputTokens,
		InputTokenDetails:  InputTokenDetails{TextTokens: f.InputTextTokens, AudioTokens: f.InputAudioTokens},
		OutputTokenDetails: OutputTokenDetails{TextTokens: f.OutputTextTokens},
	}
}
