package sim

import "context"

// Transport carries one simulated session's events, whatever the wire:
// a WebSocket, or a WebRTC data channel ("oai-events").
//
// The session engine reads client events with ReadEvent and writes server
// events with WriteEvent, one JSON event per call.
type Transport interface {
	// ReadEvent returns the next client event. It returns an error when the
	// peer is gone or ctx is done.
	ReadEvent(ctx context.Context) ([]byte, error)
	// WriteEvent sends one server event.
	WriteEvent(ctx context.Context, event []byte) error
}

// AudioTransport is implemented by transports that carry audio as media
// (WebRTC). When the session's transport implements it, input audio arrives
// through InputAudio and output audio goes to WriteAudio instead of
// input_audio_buffer.append / response.output_audio.delta events.
type AudioTransport interface {
	Transport
	// InputAudio delivers PCM16 24 kHz mono little-endian chunks received
	// from the peer; closed when the media ends.
	InputAudio() <-chan []byte
	// WriteAudio plays PCM16 24 kHz mono little-endian audio to the peer,
	// paced in real time by the transport; it returns when queued.
	WriteAudio(ctx context.Context, pcm []byte) error
	// ClearAudio drops audio queued but not yet played (barge-in).
	ClearAudio()
}
