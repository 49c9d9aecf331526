// Package realtime is the OpenAI Realtime wire protocol as voicegate needs
// it: cheap event-type sniffing, the few typed events the gateway acts on,
// usage and error events. The relay, the sideband and the simulator share it.
package realtime

import "github.com/voicegate/voicegate/internal/store"

// Usage is response.usage exactly as OpenAI sends it (GA shape; beta omits
// the image fields, which then decode as zero).
type Usage struct {
	TotalTokens        int64              `json:"total_tokens"`
	InputTokens        int64              `json:"input_tokens"`
	OutputTokens       int64              `json:"output_tokens"`
	InputTokenDetails  InputTokenDetails  `json:"input_token_details"`
	OutputTokenDetails OutputTokenDetails `json:"output_token_details"`
}

// InputTokenDetails splits input tokens by modality; cached tokens are a
// subset of the input tokens.
type InputTokenDetails struct {
	TextTokens          int64               `json:"text_tokens"`
	AudioTokens         int64               `json:"audio_tokens"`
	ImageTokens         int64               `json:"image_tokens"`
	CachedTokens        int64               `json:"cached_tokens"`
	CachedTokensDetails CachedTokensDetails `json:"cached_tokens_details"`
}

// CachedTokensDetails splits cached input tokens by modality.
type CachedTokensDetails struct {
	TextTokens  int64 `json:"text_tokens"`
	AudioTokens int64 `json:"audio_tokens"`
	ImageTokens int64 `json:"image_tokens"`
}

// OutputTokenDetails splits output tokens by modality.
type OutputTokenDetails struct {
	TextTokens  int64 `json:"text_tokens"`
	AudioTokens int64 `json:"audio_tokens"`
}

// Flat converts the wire usage into the store's flat record.
func (u Usage) Flat() store.Usage {
	return store.Usage{
		TotalTokens:       u.TotalTokens,
		InputTokens:       u.InputTokens,
		OutputTokens:      u.OutputTokens,
		InputTextTokens:   u.InputTokenDetails.TextTokens,
		InputAudioTokens:  u.InputTokenDetails.AudioTokens,
		InputImageTokens:  u.InputTokenDetails.ImageTokens,
		CachedTokens:      u.InputTokenDetails.CachedTokens,
		CachedTextTokens:  u.InputTokenDetails.CachedTokensDetails.TextTokens,
		CachedAudioTokens: u.InputTokenDetails.CachedTokensDetails.AudioTokens,
		CachedImageTokens: u.InputTokenDetails.CachedTokensDetails.ImageTokens,
		OutputTextTokens:  u.OutputTokenDetails.TextTokens,
		OutputAudioTokens: u.OutputTokenDetails.AudioTokens,
	}
}
