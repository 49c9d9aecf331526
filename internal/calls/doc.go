// Package calls places WebRTC calls for voicegate sessions and governs
// each through its sideband, like any WebSocket session.
//
// With WebRTC the media and the events travel between the browser and the
// upstream API directly; voicegate only sees the signalling. So a call is
// placed by the gateway: the browser's SDP offer goes upstream as the
// unified multipart form (the "sdp" part and the "session" part: the
// governor's call config, pinned with turn detection mediated) with the
// server key, and right after upstream answers, the gateway attaches the
// call's sideband (wss …/realtime?call_id=…, server key). The call's
// governor (internal/govern, in sideband mode) sees every upstream event
// there: it meters response.done and transcriptions, starts and reserves
// the responses of VAD turns, corrects a locked field the client changed,
// and the call ends — upstream hangup — when a budget is spent, the
// duration or idle limit is reached, or the session is revoked. A call
// whose sideband cannot be attached is hung up at once, never left
// ungoverned.
//
// The call id the client sees (Location: /v1/realtime/calls/{id}) is the
// upstream call id with a signature binding it to the voicegate session,
// so any instance can verify a hangup request without shared state.
package calls
