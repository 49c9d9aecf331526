package money

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSIGKILL: four sessions (spread over both instances on Redis) loop
// text turns; once each has completed three responses every instance is
// killed with SIGKILL mid-loop and restarted on the same store (same
// --instance and --spool-dir). Every response.done a client received is
// in the gateway ledger with the simulator's usage; within three lease
// TTLs (2 s each) of the restart the killed sessions are no longer live in
// the session API and nothing is reserved on their session and user
// accounts. Three TTLs: the dead connection's lease expires within one,
// and telling a dead session from a live one takes a lease TTL more (two
// looks at the missing lease); the third is slack for a loaded machine.
func TestSIGKILL(t *testing.T) {
	t.Parallel()
	const (
		sessions = 4
		leaseTTL = 2 * time.Second
		bound    = 3 * leaseTTL
	)
	forStores(t, func(t *testing.T, kind string) {
		shape := "SIGKILL mid-loop on " + kind
		r := newRig(t, kind, rigOptions{leaseTTL: leaseTTL})
		var ms []minted
		var cs []*client
		for i := range sessions {
			m := r.mint(t, r.gw(i), mintReq{user: "killed", budget: 1})
			ms = append(ms, m)
			cs = append(cs, connect(t, r.gw(i+1), m, fmt.Sprintf("%s session %d", shape, i)))
		}
		var (
			wg    sync.WaitGroup
			ready sync.WaitGroup
		)
		for i, c := range cs {
			wg.Add(1)
			ready.Add(1)
			go func() { // owner: test; exits when the connection dies
				defer wg.Done()
				signalled := false
				turn := textTurn(c, "Keep talking while the gateway dies", responseCreate)
				for n := 0; ; n++ {
					ev, out := turn(n)
					if out != gotDone {
						if !signalled {
							t.Errorf("%s: session %d ended before the kill: %v %v", shape, i, out, ev)
							ready.Done()
						}
						return
					}
					if n == 2 {
						signalled = true
						ready.Done()
					}
				}
			}()
		}
		ready.Wait()
		for _, g := range r.gws {
			g.kill()
		}
		wg.Wait()
		for _, g := range r.gws {
			g.restart()
		}
		restarted := time.Now()
		accts := []string{userDayAccount("killed")}
		for _, m := range ms {
			accts = append(accts, sessionAccount(m.id))
		}
		// Within the bound: every response.done a client saw is in the
		// gateway ledger (a spool may replay it after the restart), no
		// killed session is live and nothing is reserved.
		var received []event
		for _, c := range cs {
			received = append(received, c.received()...)
		}
		inLedger := func() bool {
			have := map[string]bool{}
			for _, e := range r.gwLedger(t) {
				have[e.ResponseID] = true
			}
			for _, d := range received {
				if !have[d.ResponseID] {
					return false
				}
			}
			return true
		}
		if r.settleWith(t, bound, func() bool { return inLedger() && r.settledAfterKill(t, accts, ms) }) {
			t.Logf("%s: settled %v after the restart", shape, time.Since(restarted).Round(time.Millisecond))
		}
		after := time.Since(restarted).Round(time.Millisecond)

		simUsage := map[string]string{}
		for _, e := range r.sim.Ledger() {
			simUsage[e.ResponseID] = fmt.Sprintf("%+v", e.Flat())
		}
		gw := map[string]string{}
		for _, e := range r.gwLedger(t) {
			gw[e.ResponseID] = fmt.Sprintf("%+v", e.Usage)
		}
		for i, c := range cs {
			for _, d := range c.received() {
				got, ok := gw[d.ResponseID]
				switch {
				case !ok:
					t.Errorf("%s: session %d (%s) received response.done %s (status %s) before the kill; the gateway ledger does not have it %v after the restart",
						shape, i, ms[i].id, d.ResponseID, d.Status, after)
				case got != simUsage[d.ResponseID]:
					t.Errorf("%s: %s: gateway usage %s, simulator %s", shape, d.ResponseID, got, simUsage[d.ResponseID])
				}
			}
		}
		t.Logf("%s: clients received %d response.done; the simulator billed %d; the gateway ledger has %d", shape, len(received), len(simUsage), len(gw))
		// What the gateway recorded is the simulator's (no phantom or
		// altered entries), even if it lost responses no client saw.
		for _, d := range ledgerDiff(t, r.sim.Ledger(), r.gwLedger(t)) {
			if strings.HasPrefix(d, "missing from gateway ledger") {
				t.Logf("%s: lost in the kill, never seen by a client: %s", shape, d)
				continue
			}
			t.Errorf("%s: %s", shape, d)
		}
		for _, m := range ms {
			if st := r.gws[0].sessionState(t, m.id); !gone(st) {
				t.Errorf("%s: session %s still %q %v after the restart (lease TTL %v, bound %v)", shape, m.id, st, after, leaseTTL, bound)
			}
		}
		for _, a := range accts {
			if _, res := r.spent(t, a); res != 0 {
				t.Errorf("%s: %s still reserves %s %v after the restart (lease TTL %v, bound %v)", shape, a, usd(res), after, leaseTTL, bound)
			}
		}
	})
}

// settledAfterKill reports whether no session in ms is live and nothing
// is reserved on accts.
func (r *rig) settledAfterKill(t *testing.T, accts []string, ms []minted) bool {
	t.Helper()
	for _, m := range ms {
		if !gone(r.gws[0].sessionState(t, m.id)) {
			return false
		}
	}
	for _, a := range accts {
		if _, res := r.spent(t, a); res != 0 {
			return false
		}
	}
	return true
}

// settleWith polls cond (every 25 ms) until it holds or d passes.
func (r *rig) settleWith(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond) // polling interval, not synchronization
	}
	return true
}
