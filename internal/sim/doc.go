// Package sim is an offline simulator of the OpenAI Realtime API, faithful
// enough that the official SDKs cannot tell it from the real service. It is
// the upstream of `voicegate sim` and of `voicegate dev`, and the load
// source of the benchmarks.
//
// A Server serves WebSocket sessions (GA event flow, beta names with
// OpenAI-Beta: realtime=v1), ephemeral keys (client_secrets and the beta
// sessions endpoint), call control for WebRTC calls started through
// StartCall (sideband ?call_id= sockets, hangup) and a ledger of every
// response.done at /_sim/ledger.
//
// # Deterministic behaviour
//
// Everything the simulator "decides" follows fixed rules, so tests can
// predict it (docs/simulator.md has the same rules for users):
//
//   - Server VAD: input audio is cut into 20 ms frames; a frame is speech
//     when its RMS exceeds threshold × 0.04 of full scale (0.5 → 2%).
//     speech_started fires on the first speech frame (audio_start_ms backs
//     off by prefix_padding_ms); speech_stopped after silence_duration_ms of
//     non-speech frames (semantic_vad: 250/500/800 ms for high,
//     auto|medium, low eagerness), followed by a commit and, when
//     create_response is set, a response.
//   - Reply text: after a user audio item, "This is simulated reply number
//     N to S.S seconds of audio." (N counts the session's conversation
//     responses); after a user text item, "You said: " + the text (first 200
//     characters); after a function_call_output, "The tool returned: " +
//     the output (first 120 characters).
//   - Reply audio: 60 ms per character of the reply text, clamped to
//     0.5–30 s, rounded up to 200 ms chunks; one response.output_audio.delta
//     per 200 ms chunk, paced in real time (PaceFast: no waiting), with the
//     transcript split evenly over the chunks and sent word by word.
//     Text-only responses emit one text delta per 20 characters.
//   - Tool calls: when the response has function tools and tool_choice is
//     not "none", the model calls a tool if tool_choice is "required" (the
//     first tool), names a tool (that tool), or is "auto" and the last user
//     text item contains a tool's name (case-insensitive; underscores may
//     be spaces). Its arguments follow the tool's parameters schema: every
//     property, the first enum value or const, else "example" for a string
//     (a date for format date or date-time), 1 for a number (its minimum
//     when larger), true, one example item for an array. A response that
//     follows a function_call_output never calls a tool; it says "The tool
//     returned: " + the output.
//
// # Usage
//
// Every response.done carries usage computed as follows; total = input +
// output.
//
//   - Input: instructions at ⌈chars/4⌉ text tokens; each item of the context
//     re-sent: user audio 10 tokens per second (⌈ms/100⌉), assistant audio 10
//     per second of its (possibly truncated) audio, text ⌈chars/4⌉, function
//     calls ⌈(len(name)+len(arguments))/4⌉, function outputs ⌈chars/4⌉.
//   - Cached: for conversation responses, the input of the previous
//     conversation response counts as cached, per modality (capped at the
//     current input). Out-of-band responses have no cached tokens.
//   - Output: text ⌈chars/4⌉ of the emitted transcript or text, audio 20
//     tokens per second (⌈ms/50⌉) of the emitted audio.
//   - max_output_tokens: output is cut at the largest whole chunk that keeps
//     output tokens within the limit; the response ends "incomplete" with
//     reason "max_output_tokens".
//
// # Faults
//
// Options.Faults refuses handshakes, drops connections after N events or
// after the first audio delta of each response, or delays every event.
package sim
