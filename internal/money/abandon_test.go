package money

import (
	"testing"
	"time"
)

// TestAbandon: a client goes away at every point of a response — right
// after sending response.create, after response.created, mid-audio (after
// the first response.output_audio.delta) and right after response.done —
// by a normal close or by dropping TCP; and a client cancels a response
// mid-audio with response.cancel. The simulator paces audio in real time,
// so "mid-audio" is really mid-response upstream. After the gateway
// settles, every entry of the simulator's ledger is in the gateway's (the
// gateway cancels upstream and waits for the response.done), the ledgers
// are equal, and nothing stays reserved on the session or user account.
func TestAbandon(t *testing.T) {
	t.Parallel()
	points := []struct {
		name  string
		after string // the event after which the client leaves; "" = right after sending response.create
	}{
		{"after-create", ""},
		{"after-created", "response.created"},
		{"mid-audio", "response.output_audio.delta"},
		{"after-done", "response.done"},
	}
	forStores(t, func(t *testing.T, kind string) {
		for _, how := range []string{"close", "drop"} {
			for _, p := range points {
				t.Run(how+"/"+p.name, func(t *testing.T) {
					t.Parallel()
					shape := "abandon (" + how + ") " + p.name + " on " + kind
					r, m, c := abandonSession(t, kind, shape, "abandon-"+how+"-"+p.name)
					c.sendAll(textItem(longText), responseCreate)
					if p.after != "" {
						if ev, ok := c.until(20*time.Second, is(p.after, "error")); !ok || ev.Type == "error" {
							t.Fatalf("%s: waiting for %s: %v %v; events %v", shape, p.after, ev, c.err(), c.all())
						}
					}
					if how == "close" {
						c.closeNormal()
					} else {
						c.drop()
					}
					r.checkAbandoned(t, shape, m)
				})
			}
		}
		t.Run("cancel", func(t *testing.T) {
			t.Parallel()
			shape := "response.cancel mid-audio on " + kind
			r, m, c := abandonSession(t, kind, shape, "abandon-cancel")
			c.sendAll(textItem(longText), responseCreate)
			if ev, ok := c.until(20*time.Second, is("response.output_audio.delta", "error")); !ok || ev.Type == "error" {
				t.Fatalf("%s: waiting for the first audio delta: %v %v", shape, ev, c.err())
			}
			c.send(`{"type":"response.cancel"}`)
			ev, out := c.waitResponse(20 * time.Second)
			if out != gotDone {
				t.Fatalf("%s: after response.cancel: %v %v %v; events %v", shape, out, ev, c.err(), c.all())
			}
			if ev.Status != "cancelled" {
				t.Errorf("%s: response.done status %q after response.cancel mid-audio, want cancelled", shape, ev.Status)
			}
			// The session goes on: one more whole turn, then a normal close.
			if ev, out := textTurn(c, "again", responseCreate)(1); out != gotDone {
				t.Errorf("%s: the turn after the cancel: %v %v", shape, out, ev)
			}
			c.closeNormal()
			r.checkAbandoned(t, shape, m)
		})
	})
}

// longText makes a reply of 2 s of audio ("You said: " + it, 60 ms per
// character), so a real-time response is long enough to leave in the
// middle of.
const longText = "Tell me about the sea."

// abandonSession starts a real-time rig and a session that has completed
// one whole turn.
func abandonSession(t *testing.T, kind, shape, user string) (*rig, minted, *client) {
	t.Helper()
	r := newRig(t, kind, rigOptions{realtime: true, userDayUSD: 1})
	m := r.mint(t, r.gw(0), mintReq{user: user, budget: 0.50})
	c := connect(t, r.gw(1), m, shape)
	if ev, out := textTurn(c, "hi", responseCreate)(0); out != gotDone {
		t.Fatalf("%s: first turn: %v %v", shape, out, ev)
	}
	return r, m, c
}

// checkAbandoned waits for the gateway to settle the left session (not
// live, ledger covering the simulator's, nothing reserved), then checks
// the ledgers and the accounts.
func (r *rig) checkAbandoned(t *testing.T, shape string, m minted) {
	t.Helper()
	accts := []string{sessionAccount(m.id), userDayAccount(m.user)}
	if !r.settle(t, 10*time.Second, accts, []minted{m}) {
		simL, gwL := r.sim.Ledger(), r.gwLedger(t)
		state := r.gws[0].sessionState(t, m.id)
		var res []string
		for _, a := range accts {
			s, rv := r.spent(t, a)
			res = append(res, a+": spent "+usd(s)+" reserved "+usd(rv))
		}
		t.Errorf("%s: not settled within 10s after the client left: session state %q, simulator entries %d, gateway entries %d, %v",
			shape, state, len(simL), len(gwL), res)
	}
	r.checkMoney(t, shape, []minted{m})
}
