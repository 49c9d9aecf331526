package redis

// keys builds every Redis key and channel name. The part in braces is the
// Redis Cluster hash tag: keys one script or transaction touches together
// share it, so they live in one slot. See doc.go for the whole layout.
type keys struct{ p string }

// Sessions.
func (k keys) session(id string) string         { return k.p + "{s:" + id + "}:session" }
func (k keys) sessionByToken(h string) string   { return k.p + "{t:" + h + "}:token" }
func (k keys) sessionsAll() string              { return k.p + "{sessions}:all" }
func (k keys) sessionsOfUser(u string) string   { return k.p + "{u:" + u + "}:sessions" }
func (k keys) sessionsOfKey(id string) string   { return k.p + "{k:" + id + "}:sessions" }
func (k keys) userRevokedAt(u string) string    { return k.p + "{u:" + u + "}:revoked_at" }
func (k keys) appKey(id string) string          { return k.p + "{k:" + id + "}:key" }
func (k keys) appKeyByHash(h string) string     { return k.p + "{h:" + h + "}:keyhash" }
func (k keys) appKeysAll() string               { return k.p + "{keys}:all" }
func (k keys) ledgerOfSession(id string) string { return k.p + "{s:" + id + "}:ledger" }
func (k keys) ledgerAll() string                { return k.p + "{ledger}:all" }
func (k keys) ledgerOfUser(u string) string     { return k.p + "{u:" + u + "}:ledger" }
func (k keys) ledgerOfKey(id string) string     { return k.p + "{k:" + id + "}:ledger" }

// Audit trail: sequence, log, indexes and prune cursor share one tag.
func (k keys) auditSeq() string                { return k.p + "{audit}:seq" }
func (k keys) auditLog() string                { return k.p + "{audit}:log" }
func (k keys) auditPruned() string             { return k.p + "{audit}:pruned" }
func (k keys) auditOfSession(id string) string { return k.p + "{audit}:session:" + id }
func (k keys) auditOfUser(u string) string     { return k.p + "{audit}:user:" + u }

// Limiter and leases: one key each.
func (k keys) rate(key string) string  { return k.p + "{rl:" + key + "}:gcra" }
func (k keys) lease(key string) string { return k.p + "{ls:" + key + "}:lease" }

// Budgets: every account and reservation shares the {budget} tag so one
// script can reserve atomically across accounts of different users.
func (k keys) budgetAccount(key string) string { return k.p + "{budget}:acct:" + key }
func (k keys) budgetHolds(key string) string   { return k.p + "{budget}:holds:" + key }
func (k keys) reservation(id string) string    { return k.p + "{budget}:res:" + id }
func (k keys) sessionHolds(id string) string   { return k.p + "{budget}:session:" + id }

// Revocations: a channel plus a capped list, sequence and epoch for late
// readers, all under one tag.
func (k keys) revocationChannel() string { return k.p + "revocations" }
func (k keys) revocationSeq() string     { return k.p + "{rev}:seq" }
func (k keys) revocationEpoch() string   { return k.p + "{rev}:epoch" }
func (k keys) revocationLog() string     { return k.p + "{rev}:log" }
