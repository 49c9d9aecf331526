// Package simrtc serves the simulator's WebRTC calls: POST /v1/realtime/calls
// answered by a real pion peer connection whose events travel on the
// "oai-events" data channel and whose audio is RTP.
//
// Both request forms of the Realtime API are accepted: a raw SDP offer
// (Content-Type application/sdp) with an ek_ key, whose bound session
// configures the call; and multipart/form-data with the part "sdp" and an
// optional part "session" (a GA session config), with a server key. The
// answer is 201 with Content-Type application/sdp and Location
// /v1/realtime/calls/{call_id}. Errors use OpenAI's JSON envelope: 401
// invalid_api_key, 400 for a bad body or an offer the simulator cannot
// serve, 405 for another method.
//
// Media: a pure-Go simulator cannot encode or decode Opus, so the answer
// carries only PCMU (G.711 μ-law, 8 kHz, payload type 0), which every
// browser offers. Incoming PCMU is decoded, upsampled to PCM16 24 kHz by
// linear interpolation and delivered to the session engine one RTP packet at
// a time; lost packets (up to one second) are replaced by silence so the
// input timeline stays true. Outgoing PCM16 24 kHz audio is low-pass filtered
// (3.4 kHz), decimated to 8 kHz, μ-law encoded and sent as 20 ms RTP packets
// paced in real time. Nothing is sent while there is nothing to play: each
// talk spurt starts with the RTP marker bit and its timestamp jumps over the
// pause (discontinuous transmission, RFC 3551 §4.1); a chunk up to 60 ms
// late does not cut a talk spurt. ClearAudio drops what is queued at once.
//
// Networking: by default candidates are gathered only on loopback, UDP over
// IPv4, without STUN or mDNS (see LoopbackOnly), and the answer is sent once
// gathering is complete, so the simulator never touches another network;
// WithSettingEngine widens that. No interceptors are registered (no NACK or
// RTCP reports) to keep calls cheap.
//
// Lifetime: a call ends when its peer connection fails or closes, when the
// peer closes the event channel, when the peer does not connect within the
// connect timeout (WithConnectTimeout, default 30 s) or when the simulator
// ends it: the transport's Close, or, as with coder/websocket, cancelling the
// context of a pending ReadEvent (the engine's session context ends on
// hangup, expiry and shutdown). When the simulator ends a call, the peer
// connection closes once the peer has acknowledged the last events (at most
// 1 s); ending stops every goroutine of the call, and ReadEvent and
// WriteEvent then fail with ErrPeerGone, ErrConnectTimeout or ErrCallClosed.
package simrtc
