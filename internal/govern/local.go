package govern

import (
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Local accounting keeps live sessions running while the shared store
// (Redis) is unreachable, without letting one instance over-grant itself.
//
// Every process keeps one view of each budget account its sessions touch,
// shared by all of them: the remaining budget last learned from the store
// (after a successful Reserve, or limit − spent − reserved read by Spent),
// minus what this process granted locally since. When Reserve fails with
// store.ErrUnavailable the governor grants from that view instead: the
// largest amount in [Min, Want] that every account's view still covers.
// The actual cost of a locally granted response is then written with
// Charge (which the spool keeps while the store is down), never with a
// Settle of a reservation the store never saw, so it reaches the shared
// accounts exactly once.
//
// An account this process never learned is not granted from: the session
// gets governance_unavailable for that response (fail closed), as before
// local accounting existed. Sessions learn every account at their first
// client event, so this only happens when the store went down between a
// connect and the session's first event.
//
// The view errs on the low side: a learned value is a lower bound of what
// the store had left (Reserve reports the tightest account only, and holds
// of other sessions count as spent), and locally charged costs stay
// deducted until a later read is known to include them (the spool was
// empty when the read started).

// localAccount is this process's view of one budget account.
type localAccount struct {
	known     bool
	remaining int64     // learned remaining budget (a lower bound)
	held      int64     // local grants of responses not yet done
	charged   int64     // actual costs of done local grants not known to be in remaining
	expires   time.Time // the account's window end, for pruning
}

func (a *localAccount) avail() int64 { return a.remaining - a.held - a.charged }

// localBudgets is the per-process view of every budget account, shared by
// the sessions of one Governance. The zero value is ready to use.
type localBudgets struct {
	mu     sync.Mutex
	accts  map[string]*localAccount
	outage bool // local grants are being made (for transition logs)
	pruned time.Time
}

// account returns the view of a, creating an unknown one. mu is held.
func (l *localBudgets) account(a store.BudgetAccount) *localAccount {
	if l.accts == nil {
		l.accts = map[string]*localAccount{}
	}
	la := l.accts[a.Key]
	if la == nil {
		la = &localAccount{}
		l.accts[a.Key] = la
	}
	if a.ExpiresAt.After(la.expires) {
		la.expires = a.ExpiresAt
	}
	return la
}

// snapshot returns what is charged locally on each account now, before a
// read of the store: if the read succeeds and nothing was spooled when it
// started, those charges are in what it reports.
func (l *localBudgets) snapshot(accounts []store.BudgetAccount) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, len(accounts))
	for i, a := range accounts {
		if la := l.accts[a.Key]; la != nil {
			out[i] = la.charged
		}
	}
	return out
}

// learn records remaining[i] as what the store had left on accounts[i].
// charged is the snapshot taken before the read; settled reports whether
// those charges are known to be included (no spooled writes were pending).
func (l *localBudgets) learn(accounts []store.BudgetAccount, remaining []int64, charged []int64, settled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range accounts {
		la := l.account(a)
		la.known, la.remaining = true, remaining[i]
		if settled {
			la.charged = max(la.charged-charged[i], 0)
		}
	}
}

// grant holds the largest g in [lo, want] every account's view covers. It
// returns 0 when even lo does not fit; unknown reports an account never
// learned (nothing is granted then).
func (l *localBudgets) grant(accounts []store.BudgetAccount, want, lo int64) (granted, remaining int64, unknown bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := want
	remaining = -1
	for _, a := range accounts {
		la := l.account(a)
		if !la.known {
			return 0, 0, true
		}
		av := la.avail()
		if remaining < 0 || av < remaining {
			remaining = av
		}
		g = min(g, av)
	}
	if g < lo || g <= 0 {
		return 0, max(remaining, 0), false
	}
	for _, a := range accounts {
		l.accts[a.Key].held += g
	}
	return g, remaining - g, false
}

// avail is the least any account's view still covers; ok is false when
// an account was never learned.
func (l *localBudgets) avail(accounts []store.BudgetAccount) (n int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range accounts {
		la := l.accts[a.Key]
		if la == nil || !la.known {
			return 0, false
		}
		if av := la.avail(); i == 0 || av < n {
			n = av
		}
	}
	return n, true
}

// done turns a local grant into its actual cost, once the cost was
// written to the store (directly or spooled).
func (l *localBudgets) done(accounts []store.BudgetAccount, granted, actual int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range accounts {
		la := l.account(a)
		la.held = max(la.held-granted, 0)
		la.charged += actual
	}
}

// release gives back a local grant whose response never ran.
func (l *localBudgets) release(accounts []store.BudgetAccount, granted int64) {
	l.done(accounts, granted, 0)
}

// setOutage records whether local grants are being made and reports
// whether that changed (so the transition is logged once).
func (l *localBudgets) setOutage(on bool) (changed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed, l.outage = l.outage != on, on
	return changed
}

// prune drops the views of accounts whose window ended, at most once a
// minute; views with work in flight are kept.
func (l *localBudgets) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) < time.Minute {
		return
	}
	l.pruned = now
	for k, la := range l.accts {
		if !la.expires.IsZero() && la.expires.Before(now) && la.held == 0 {
			delete(l.accts, k)
		}
	}
}
