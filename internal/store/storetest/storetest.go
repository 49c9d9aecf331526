// Package storetest is the conformance suite every store backend passes.
//
// A backend's test calls Run with a constructor; Run checks every method of
// store.Store against the semantics documented in package store, including
// atomicity under concurrent use of two handles on the same backend (two
// processes on one SQLite file, two instances on one Redis). RunClock checks
// the time-based semantics exactly with an injected clock, for backends that
// take one; Bench measures the hot paths.
//
// Run uses the real clock: lease ttl and GCRA refill are exercised with
// durations of tens to hundreds of milliseconds, so a backend that keeps its
// own clock (Redis TIME) is tested the same way as one that reads the local
// clock. The whole suite runs in a few seconds.
//
// Where package store leaves a detail open, the suite pins it down so every
// backend answers alike:
//   - ListSessions is newest first (CreatedAt descending); SessionFilter.Since
//     is inclusive. LedgerEntries is oldest first (At ascending).
//     AuditEntries is in Seq order and Limit keeps the oldest matches, so
//     AfterSeq pages forward. ListKeys includes revoked keys (order free).
//   - CreateSession and CreateKey return store.ErrConflict for a taken id;
//     RevokeKey returns store.ErrNotFound for an unknown id.
//   - RevokeUser never moves a user's revocation time backwards.
//   - Allow refuses with Remaining 0 and RetryAfter the time until the next
//     event fits; allowed events have RetryAfter 0 and Remaining the events
//     still allowed right now.
//   - RenewLease returns store.ErrNotFound when the holder has no unexpired
//     slot; ReleaseLease of an unknown holder is not an error; a lease with
//     ttl d counts until exactly d has passed.
//   - Reserve reports Remaining math.MaxInt64 when no account has a limit,
//     and the tightest account's room (never negative) when refused.
//     Settle may charge more than was held. SessionHolds of "" lists
//     nothing; a retried Reserve is listed once. Whether holds expire is the
//     backend's (memory's never do); backends that expire them test that
//     SessionHolds leaves expired ones out.
//   - Revocations arrive in publish order, on the publishing handle too.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Run checks a backend. newBackend creates a fresh, empty backend for one
// subtest and returns a function that opens a new handle on that same backend
// (memory: return the same instance; SQLite: open the same file again; Redis:
// a new client on the same database). Handles are closed by the suite, once
// per call of open.
func Run(t *testing.T, newBackend func(t *testing.T) (open func() store.Store)) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Sessions", sessionTests},
		{"Keys", keyTests},
		{"Ledger", ledgerTests},
		{"Audit", auditTests},
		{"Limiter", limiterTests},
		{"Leases", leaseTests},
		{"Budgets", budgetTests},
		{"Revocations", revocationTests},
		{"Ping", []test{{"Ok", testPing}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					h := &harness{open: newBackend(t)}
					tc.fn(t, h)
				})
			}
		})
	}
}

// test is one conformance check run against a fresh backend.
type test struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// harness hands a test handles on one fresh backend.
type harness struct {
	open func() store.Store
}

// handle opens a new handle on the backend, closed when the test ends.
func (h *harness) handle(t *testing.T) store.Store {
	t.Helper()
	s := h.open()
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// two opens two handles on the backend.
func (h *harness) two(t *testing.T) (store.Store, store.Store) {
	t.Helper()
	return h.handle(t), h.handle(t)
}

// epoch is the base of the suite's record times: whole seconds, so they
// round-trip exactly through every backend's encoding, and near the present,
// so backends that expire old records (retention, TTLs) keep them.
var epoch = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

// at returns epoch plus d.
func at(d time.Duration) time.Time { return epoch.Add(d) }

// now returns the current time truncated to the millisecond (which also
// strips the monotonic reading).
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func testPing(t *testing.T, h *harness) {
	s := h.handle(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// sameJSON reports whether a and b hold equal JSON values (whitespace and key
// order aside); two empty values are equal.
func sameJSON(a, b json.RawMessage) bool {
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// within waits up to d for ch to yield a value.
func within[T any](ctx context.Context, ch <-chan T, d time.Duration) (T, bool) {
	var zero T
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-timer.C:
		return zero, false
	case <-ctx.Done():
		return zero, false
	}
}
