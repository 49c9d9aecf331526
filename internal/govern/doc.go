// Package govern decides about voicegate sessions, whatever carries them.
//
// One Governor per instance holds what every decision needs — the store,
// the tiers, the price table, the clock — and answers three kinds of
// question:
//
//   - Admission: may this mint happen (AdmitMint), may this session connect
//     now (Admit: the one-live-connection token lease, the connect rate and
//     the concurrency caps, each a lease renewed while the session lives).
//   - Live decisions: Open returns the Session governor of one connection.
//     Its engine (the WebSocket relay, a WebRTC sideband) hands it every
//     client event before it goes upstream (Session.Client) and every
//     upstream event before it reaches the client (Session.Upstream), and
//     acts on the answer: forward, rewrite, refuse, or end the session.
//   - Recovery: Recover ends the sessions of a dead instance and releases
//     what they held.
//
// # Money
//
// Every response reserves its worst-case cost on the session, user and
// app-key budget accounts before it is sent upstream, through one routine
// (reserve), and settles to its exact cost when its response.done is
// recorded in the ledger — before the client sees that response.done. A
// response that cannot be afforded in full runs with max_output_tokens
// clamped to what the reservation covers; one that cannot be afforded at
// all is refused with budget_exceeded.
//
// Server turn detection (server_vad, semantic_vad) would start responses
// upstream with no response.create to reserve for. The governor mediates
// it: upstream is told create_response:false, and when upstream commits a
// turn the governor reserves and sends the response.create itself, so a
// VAD turn is governed exactly like a client turn. The client keeps seeing
// the turn detection it asked for.
//
// The input estimate of a response is an upper bound of its context: the
// exact input+output of the last conversation response, plus every event
// added since (text at one token per four bytes of JSON, audio at ten
// tokens per second of its real format: PCM16 24 kHz or G.711 8 kHz).
//
// Input audio transcription is billed upstream after each commit with
// nothing to reserve: it is charged when its usage arrives, and the
// session ends with budget_exceeded once its budget is reached.
package govern
