// Package redis is the Redis (or Valkey) backend of voicegate's store, for
// several gateway instances sharing one state: `--store redis://…`.
//
// # Why go-redis
//
// We use github.com/redis/go-redis/v9 rather than rueidis. rueidis is faster
// under heavy pipelining thanks to auto-pipelining and client-side caching,
// but voicegate's hot paths are single Lua scripts (one round trip each),
// where the two clients perform alike. go-redis gives us what correctness
// needs with the least code of ours: Script.Run (EVALSHA with a transparent
// EVAL fallback when a restarted Redis lost its script cache), PubSub that
// reconnects and resubscribes by itself and reports each resubscription (we
// replay missed revocations then), WATCH/MULTI helpers, and one
// UniversalClient interface over a single node, Sentinel failover and
// Cluster (see Open and WithClient).
//
// It needs Redis 5 or later (scripts that read TIME and then write rely on
// effects replication, the default since 5.0), or Valkey. The test helper
// redistest starts a real redis-server (one node, or a one-node Cluster).
//
// # Clock
//
// Rate limits, leases and budget holds use the Redis server's clock (TIME
// inside the scripts), so instances with skewed clocks agree on one
// timeline. Retention of sessions is computed from the gateway's clock.
//
// # Key layout
//
// Every key starts with the prefix (default "vg:"). The part in braces is
// the Redis Cluster hash tag: keys that one script or transaction touches
// together share it. User-chosen strings (ids, users, limiter keys) appear
// verbatim.
//
//	vg:{s:<session>}:session      string  session JSON (+ token hash); TTL = retention after max(connect deadline, end, last write)
//	vg:{t:<token hash>}:token     string  session id; same TTL as the session
//	vg:{sessions}:all             zset    session ids by created-at (µs); ids of expired sessions dropped when listed
//	vg:{u:<user>}:sessions        zset    the user's session ids, likewise
//	vg:{k:<app key>}:sessions     zset    the app key's session ids, likewise
//	vg:{u:<user>}:revoked_at      string  latest user revocation (Unix ns; <user> may be "<app key id>/<user>"); TTL = retention
//	vg:{k:<app key>}:key          string  app key JSON (+ hash); no TTL, revocation is explicit
//	vg:{h:<key hash>}:keyhash     string  app key id; no TTL
//	vg:{keys}:all                 zset    app key ids by created-at
//	vg:{s:<session>}:ledger       hash    response id → ledger entry JSON (HSETNX: exactly once); no TTL
//	vg:{ledger}:all               zset    ledger entry JSON by time (µs), for queries
//	vg:{u:<user>}:ledger          zset    the user's entries, likewise
//	vg:{k:<app key>}:ledger       zset    the app key's entries, likewise
//	vg:{audit}:seq                string  audit sequence counter
//	vg:{audit}:log                zset    "<seq>|<entry JSON>" scored by seq
//	vg:{audit}:session:<session>  zset    the session's entries, likewise (same members)
//	vg:{audit}:user:<user>        zset    the user's entries, likewise
//	vg:{audit}:pruned             string  audit prune cursor: the highest sequence number pruning has examined
//	vg:{rl:<key>}:gcra            string  GCRA theoretical arrival time (µs); TTL = until the bucket is full again
//	vg:{ls:<key>}:lease           zset    holder → expiry (ms); TTL = the latest expiry
//	vg:{budget}:acct:<account>    hash    spent, reserved, h:<reservation> → amount held; TTL = window end + 24 h
//	vg:{budget}:holds:<account>   zset    reservation → hold expiry (ms); same TTL
//	vg:{budget}:res:<reservation> hash    amount, accounts, session, expires (hold expiry, ms); TTL = 2 × reservation TTL + 1 h
//	vg:{budget}:session:<session> list    the session's reservation ids in grant order (SessionHolds); same TTL, refreshed per reserve
//	vg:{rev}:seq, vg:{rev}:epoch  string  revocation sequence and data epoch
//	vg:{rev}:log                  list    "<epoch>:<seq>:<revocation JSON>", newest first, capped (1000)
//	vg:revocations                channel the same messages, published live
//
// # Atomicity and Cluster
//
// Multi-key scripts only touch keys of one tag. Budgets are the one place
// where a single operation spans several users' accounts (session, user per
// day, app key per month): every budget key shares the {budget} tag, so one
// script reserves on all accounts at once and nothing over-grants. The cost
// is that budget traffic lands on one Cluster shard; each reserve or settle
// is a single short script, far below what one shard serves. The audit
// trail shares {audit} for a total order of sequence numbers.
//
// Writes that span slots are ordered so a failure between them is safe:
// a session is claimed (SET NX) before its token hash, and released if the
// hash is taken; a ledger entry is first recorded exactly once in its
// session's hash (the authority), then indexed for queries with the stored
// JSON, which is idempotent, so a retry repairs a missing index entry.
//
// Open accepts "redis+cluster://host:port?addr=host2:port2" for a Cluster.
// TestClusterHashTags and the conformance suite run against a one-node
// Cluster, which refuses any command or script whose keys span slots.
//
// # Expiry
//
// A budget hold lives for the reservation TTL (WithReservationTTL): the
// holds of an instance that died before settling are released by the next
// script that reads the account. The reservation record outlives its hold,
// so a late settle still charges the actual cost. The reserve and settle
// scripts keep each session's list of reservation ids; SessionHolds reports
// those whose hold has not expired and drops the rest from the list
// (reservations made by older versions record no session and are never
// listed). Lease holders expire on their own the same way. Ledger and app
// keys are kept until an operator removes them.
//
// The audit trail is pruned like SQLite's (WithAuditRetention, 30 days by
// default; 0 keeps everything): entries older than the retention leave the
// log and their session and user indexes, except store.PermanentAuditKinds
// (mints, ends, revocations, keys created), kept forever. Every instance
// prunes at start and then every WithPruneInterval (1 h). PruneAudit walks
// the log in sequence order from the {audit}:pruned cursor and stops at the
// first entry still within the retention, so each run reads only what
// arrived since, plus one entry; each batch of 256 is one read and one
// script that removes by sequence number and only moves the cursor
// forward. Running it twice, or on two instances at once, removes nothing
// more. The entry times are decoded in Go, not Lua, and the script is
// given every index key it touches, all under {audit}.
//
// # Failure
//
// Every Redis failure is wrapped with store.ErrUnavailable so the gateway
// fails closed; Ping is bounded by WithPingTimeout (1 s by default), and
// the client built by Open dials once with a 1 s timeout and never
// re-sends a command whose reply was lost (a script may have run; Charge or
// AppendAudit sent twice would count twice): callers retry what is
// idempotent (RecordUsage, Reserve with the same id, Settle).
//
// Without persistence a restarted Redis forgets sessions, spend and
// audit. Run it with appendonly yes in production; the gateway itself
// survives the loss (fresh connections, scripts reloaded, subscriptions
// resumed), which the tests check by restarting a Redis that saves nothing.
// Numbers inside the Lua scripts are doubles: nano-dollar amounts are exact
// up to 2^53 (about 9 million dollars per account).
package redis
