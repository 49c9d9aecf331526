package money

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
)

// usd formats nano-dollars.
func usd(nano int64) string { return fmt.Sprintf("$%.9f", float64(nano)/1e9) }

// nanoUSD converts dollars to nano-dollars.
func nanoUSD(v float64) int64 { return int64(v*1e9 + 0.5) }

// simCost is the cost of a simulator entry with the built-in price table.
func simCost(t *testing.T, e sim.LedgerEntry) int64 {
	t.Helper()
	c, ok := meter.DefaultTable().Cost(e.Model, e.Flat())
	if !ok {
		t.Fatalf("no price for simulator model %q", e.Model)
	}
	return c
}

// ledgerDiff compares the simulator's ledger with the gateway's entry for
// entry and returns one line per difference: entries missing from the
// gateway, entries the simulator never billed, usage, status or cost that
// differ, and a simulator session split over several gateway sessions.
func ledgerDiff(t *testing.T, simL []sim.LedgerEntry, gwL []store.LedgerEntry) []string {
	t.Helper()
	var diffs []string
	gw := map[string]store.LedgerEntry{}
	for _, e := range gwL {
		if _, dup := gw[e.ResponseID]; dup {
			diffs = append(diffs, fmt.Sprintf("gateway ledger has response %s twice", e.ResponseID))
		}
		gw[e.ResponseID] = e
	}
	sessOf := map[string]string{} // simulator session → gateway session
	seen := map[string]bool{}
	for _, s := range simL {
		seen[s.ResponseID] = true
		g, ok := gw[s.ResponseID]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing from gateway ledger: %s %s (sim session %s, status %s, %d tokens, cost %s)",
				kindOf(s.Kind), s.ResponseID, s.SessionID, s.Status, s.Flat().TotalTokens, usd(simCost(t, s))))
			continue
		}
		if prev, ok := sessOf[s.SessionID]; ok && prev != g.SessionID {
			diffs = append(diffs, fmt.Sprintf("sim session %s is split over gateway sessions %s and %s", s.SessionID, prev, g.SessionID))
		}
		sessOf[s.SessionID] = g.SessionID
		if want := s.Flat(); g.Usage != want {
			diffs = append(diffs, fmt.Sprintf("usage of %s: gateway %+v, simulator %+v", s.ResponseID, g.Usage, want))
		}
		if g.Status != s.Status {
			diffs = append(diffs, fmt.Sprintf("status of %s: gateway %q, simulator %q", s.ResponseID, g.Status, s.Status))
		}
		if g.Kind != s.Kind {
			diffs = append(diffs, fmt.Sprintf("kind of %s: gateway %q, simulator %q", s.ResponseID, g.Kind, s.Kind))
		}
		if want := simCost(t, s); g.CostNanoUSD != want {
			diffs = append(diffs, fmt.Sprintf("cost of %s: gateway %s, meter.DefaultTable() of the simulator's usage %s", s.ResponseID, usd(g.CostNanoUSD), usd(want)))
		}
	}
	for _, g := range gwL {
		if !seen[g.ResponseID] {
			diffs = append(diffs, fmt.Sprintf("gateway ledger has %s %s (session %s, cost %s) that the simulator never billed",
				kindOf(g.Kind), g.ResponseID, g.SessionID, usd(g.CostNanoUSD)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func kindOf(k string) string {
	if k == "" {
		return "response"
	}
	return k
}

// ledgerEquals fails unless the gateway ledger equals the simulator's,
// entry for entry.
func ledgerEquals(t *testing.T, shape string, simL []sim.LedgerEntry, gwL []store.LedgerEntry) {
	t.Helper()
	if d := ledgerDiff(t, simL, gwL); len(d) > 0 {
		t.Errorf("%s: gateway ledger (%d entries) != simulator ledger (%d entries):\n  %s",
			shape, len(gwL), len(simL), strings.Join(d, "\n  "))
	}
}

// covered reports whether every simulator entry is in the gateway ledger.
func covered(simL []sim.LedgerEntry, gwL []store.LedgerEntry) bool {
	have := map[string]bool{}
	for _, e := range gwL {
		have[e.ResponseID] = true
	}
	for _, e := range simL {
		if !have[e.ResponseID] {
			return false
		}
	}
	return true
}

// settle waits (polling, up to d) until the gateway ledger covers the
// simulator's, nothing is reserved on accounts and every session in
// notLive has left the "live" state. It does not fail: the checks that
// follow report what did not settle.
func (r *rig) settle(t *testing.T, d time.Duration, accounts []string, notLive []minted) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok := covered(r.sim.Ledger(), r.gwLedger(t))
		for _, a := range accounts {
			if !ok {
				break
			}
			_, res := r.spent(t, a)
			ok = res == 0
		}
		for _, m := range notLive {
			if !ok {
				break
			}
			ok = gone(r.gws[0].sessionState(t, m.id))
		}
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond) // polling interval, not synchronization
	}
}

// account is one budget account and its limit.
type account struct {
	key   string
	limit int64 // nano-dollars
}

// checkMoney waits for the gateway to settle the sessions (all closed by
// the client), then asserts ledger equality and, for the session and user
// accounts, recorded cost ≤ limit, spent == recorded cost and nothing
// reserved.
func (r *rig) checkMoney(t *testing.T, shape string, sessions []minted) {
	t.Helper()
	var accts []account
	var keys []string
	for _, m := range sessions {
		if m.budget > 0 {
			accts = append(accts, account{sessionAccount(m.id), nanoUSD(m.budget)})
		}
	}
	users := map[string]bool{}
	for _, m := range sessions {
		if !users[m.user] {
			users[m.user] = true
			accts = append(accts, account{userDayAccount(m.user), nanoUSD(r.userDy)})
		}
	}
	for _, a := range accts {
		keys = append(keys, a.key)
	}
	if !r.settle(t, 10*time.Second, keys, sessions) {
		t.Errorf("%s: the gateway did not settle within 10s of the clients leaving (sessions not live, ledger covering the simulator's, nothing reserved on %v)", shape, keys)
	}
	simL, gwL := r.sim.Ledger(), r.gwLedger(t)
	ledgerEquals(t, shape, simL, gwL)
	for _, a := range accts {
		var cost int64
		n := 0
		for _, e := range gwL {
			if chargedTo(e, a.key) {
				cost += e.CostNanoUSD
				n++
			}
		}
		var simCostSum int64
		for _, e := range simL {
			if simChargedTo(e, simL, gwL, a.key, sessions) {
				simCostSum += simCost(t, e)
			}
		}
		spent, reserved := r.spent(t, a.key)
		if cost > a.limit || simCostSum > a.limit {
			t.Errorf("%s: account %s overspent: ledger cost %s (simulator %s, %d responses) > budget %s (over by %s)",
				shape, a.key, usd(cost), usd(simCostSum), n, usd(a.limit), usd(max(cost, simCostSum)-a.limit))
		}
		if spent > a.limit {
			t.Errorf("%s: account %s spent %s > budget %s", shape, a.key, usd(spent), usd(a.limit))
		}
		if spent != cost {
			t.Errorf("%s: account %s spent %s but its ledger entries cost %s (%d entries)", shape, a.key, usd(spent), usd(cost), n)
		}
		if reserved != 0 {
			t.Errorf("%s: account %s still reserves %s with every session idle or gone", shape, a.key, usd(reserved))
		}
		t.Logf("%s: %s: %d responses, cost %s, spent %s, reserved %s, budget %s", shape, a.key, n, usd(cost), usd(spent), usd(reserved), usd(a.limit))
	}
}

// chargedTo reports whether gateway entry e is charged to account key.
func chargedTo(e store.LedgerEntry, key string) bool {
	if key == sessionAccount(e.SessionID) {
		return true
	}
	return strings.HasPrefix(key, "user:day:") && key == userDayAccount(e.User)
}

// simChargedTo reports whether simulator entry e belongs to account key,
// through the gateway session its simulator session maps to (by any entry
// of that simulator session the gateway recorded; a rig with one session
// maps everything to it).
func simChargedTo(e sim.LedgerEntry, simL []sim.LedgerEntry, gwL []store.LedgerEntry, key string, sessions []minted) bool {
	byResp := map[string]string{}
	for _, g := range gwL {
		byResp[g.ResponseID] = g.SessionID
	}
	gs := ""
	for _, s := range simL {
		if s.SessionID == e.SessionID && byResp[s.ResponseID] != "" {
			gs = byResp[s.ResponseID]
			break
		}
	}
	if gs == "" && len(sessions) == 1 {
		gs = sessions[0].id
	}
	for _, m := range sessions {
		if m.id == gs {
			return key == sessionAccount(m.id) || key == userDayAccount(m.user)
		}
	}
	return false
}

// checkSpentOut asserts that a session refused with budget_exceeded had
// really spent its budget: what was left is less than a generous bound of
// the dearest cost of a minimal (20 output tokens) response, whose input
// is bounded by twice the last response's input and output plus twice
// what the refused turn added (addedTokens) plus 200. A reservation left
// behind by an earlier response, or a hold the session no longer needs,
// shows up as a budget refused with much more left than that.
func (r *rig) checkSpentOut(t *testing.T, shape string, m minted, last event, addedTokens int) {
	t.Helper()
	spent, _ := r.spent(t, sessionAccount(m.id))
	left := nanoUSD(m.budget) - spent
	var in int
	if last.Usage != nil {
		in = int(last.Usage.InputTokens + last.Usage.OutputTokens)
	}
	bound := meter.DefaultTable().MaxCost(model, 20, 2*in+2*addedTokens+200)
	if left > bound {
		t.Errorf("%s: budget_exceeded with %s of %s left (spent %s), but a minimal response next costs at most %s (last response %d tokens in+out, turn added ≤ %d tokens)",
			shape, usd(left), usd(nanoUSD(m.budget)), usd(spent), usd(bound), in, addedTokens)
	}
}
