// Package spool is a store.Store decorator that keeps metering durable while
// the backend (Redis) is unreachable.
//
// When RecordUsage, Charge, Settle or AppendAudit fail with
// store.ErrUnavailable, the operation is appended to a local spool file as one
// JSON line and fsync'd before the call returns success. A replayer goroutine,
// owned by the Spool and stopped by Close, pings the backend every interval
// and, once Ping succeeds, applies the spooled operations in order. Every
// other method passes straight through, so reads, mints and connects still
// fail closed while the backend is down. SessionHolds reads the backend too,
// but leaves out the reservations whose Settle is still spooled.
//
// # Ordering
//
// While the spool holds operations, new spoolable operations are appended to
// it directly (without trying the backend) so that they are applied after the
// older ones.
//
// # Exactly once
//
// Replay is at-least-once: an operation is removed from the spool only after
// the backend accepted it, and the number of applied lines is fsync'd to a
// small offset file after every operation, so a crash between "applied" and
// "recorded as applied" replays at most that one operation again.
//
//   - RecordUsage is idempotent by (SessionID, ResponseID), and Settle of an
//     already-settled reservation is a no-op: at-least-once delivery plus an
//     idempotent operation is exactly-once.
//   - Charge and AppendAudit are not idempotent. They are spooled only when the
//     backend call returned store.ErrUnavailable (or, while the spool is
//     non-empty, without calling the backend at all), so the normal case — the
//     backend was unreachable and never saw the request — cannot double. Two
//     narrow windows remain and are accepted: the backend applied the request
//     but its reply was lost (a connection cut mid-command), and a crash of this
//     process between applying a replayed op and fsyncing the offset. Either
//     doubles at most one Charge or audit line; ledger entries, from which
//     usage reports and cost are computed, are never doubled.
//
// # RecordUsage result
//
// A spooled RecordUsage reports inserted=true unless the spool already holds
// an entry for the same (SessionID, ResponseID), in which case it reports
// false. A spooled entry that turns out to be present in the backend already
// (recorded before the outage) is skipped by the backend on replay, so the
// optimistic true never becomes a double entry.
package spool
