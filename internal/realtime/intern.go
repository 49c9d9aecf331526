package realtime

// knownTypes interns the event types the API sends and accepts, so sniffing
// a frame's type allocates nothing for them (a lookup keyed by string(b)
// does not allocate).
var knownTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{
		// Server events (GA and beta names).
		"error", "session.created", "session.updated", "conversation.created",
		"conversation.item.added", "conversation.item.created", "conversation.item.done",
		"conversation.item.deleted", "conversation.item.retrieved", "conversation.item.truncated",
		"conversation.item.input_audio_transcription.completed", "conversation.item.input_audio_transcription.delta",
		"conversation.item.input_audio_transcription.failed", "conversation.item.input_audio_transcription.segment",
		"input_audio_buffer.committed", "input_audio_buffer.cleared", "input_audio_buffer.speech_started",
		"input_audio_buffer.speech_stopped", "input_audio_buffer.timeout_triggered", "input_audio_buffer.dtmf_event_received",
		"output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
		"response.created", "response.done", "response.output_item.added", "response.output_item.done",
		"response.content_part.added", "response.content_part.done",
		"response.output_text.delta", "response.output_text.done", "response.text.delta", "response.text.done",
		"response.output_audio.delta", "response.output_audio.done", "response.audio.delta", "response.audio.done",
		"response.output_audio_transcript.delta", "response.output_audio_transcript.done",
		"response.audio_transcript.delta", "response.audio_transcript.done",
		"response.function_call_arguments.delta", "response.function_call_arguments.done",
		"response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
		"response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed",
		"rate_limits.updated", "transcription_session.created", "transcription_session.updated",
		// Client events.
		"session.update", "transcription_session.update", "input_audio_buffer.append",
		"input_audio_buffer.commit", "input_audio_buffer.clear", "output_audio_buffer.clear",
		"conversation.item.create", "conversation.item.retrieve", "conversation.item.truncate",
		"conversation.item.delete", "response.create", "response.cancel",
	} {
		m[t] = t
	}
	return m
}()

// intern returns b as a string, shared for a known event type.
func intern(b []byte) string {
	if t, ok := knownTypes[string(b)]; ok {
		return t
	}
	return string(b)
}
