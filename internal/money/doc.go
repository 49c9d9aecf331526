// Package money is the money suite: black-box tests that run the real
// voicegate binary in front of the in-process simulator and prove, for
// every traffic shape a client can produce, that the gateway meters
// exactly what upstream billed and never lets a budget be overspent.
//
// Each test starts its own rig: a fast (or real-time) simulator, a store
// and the `voicegate serve` binary built once by TestMain — one instance
// on SQLite, or two instances (distinct --instance and --spool-dir) on one
// throw-away redis-server with sessions minted on one and connected to the
// other. Clients mint over HTTP with the admin key and talk over
// coder/websocket with `Authorization: Bearer <token>`.
//
// After the traffic, the suite waits (polling the store with a deadline,
// never a fixed sleep) until the gateway has settled, then checks:
//
//   - ledger equality: the gateway's ledger (read through the store
//     package) holds exactly the simulator's ledger (sim.Server.Ledger),
//     entry for entry — same response ids, one simulator session per
//     gateway session, same status and usage, and the cost that
//     meter.DefaultTable() gives for that usage;
//   - budgets: the recorded cost of every budgeted account (session:<id>,
//     user:day:<user>:<date>) is at most its limit, the account's spent
//     equals that cost and nothing stays reserved once the sessions are
//     idle or gone.
//
// The shapes: client turns in PCM16, G.711 μ-law and A-law and text;
// server-VAD turns from 0.5 s to 10 minutes, paced fast and in real time;
// turn detection switched off at mint or by session.update; twenty
// concurrent sessions on one user budget; clients that abandon a response
// at every point (close or TCP drop) or cancel it; response.create events
// that upstream rejects; out-of-band responses; and SIGKILL of the gateway
// mid-loop followed by a restart on the same store.
//
// The package has no non-test code.
package money
