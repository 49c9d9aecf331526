// Package cluster holds the multi-process tests of voicegate: several real
// `voicegate serve` processes sharing one real redis-server and one
// in-process simulator, proving that tokens, revocations, leases and the
// ledger work across instances and survive Redis restarts and SIGKILL.
//
// It has no non-test code. TestMain builds the binary once.
package cluster
