package money

import (
	"testing"
	"time"
)

// TestRejectedResponseCreate: response.create events that upstream
// rejects must give their reservation back. After each rejection the
// session's account returns to reserved == 0 once idle, later responses
// still run, and the loop ends on budget_exceeded only when the budget is
// really spent.
//
//   - active-response: a second response.create while the first runs in
//     the default conversation, three times; the simulator (real-time pace,
//     so the first is surely still running) answers
//     conversation_already_has_active_response. These responses ask for
//     max_output_tokens 40 so that both reservations fit the budget.
//   - max-output-tokens: response.create with max_output_tokens 5000; the
//     simulator accepts 1–4096 or "inf" (internal/sim/config.go
//     parseMaxTokens) and answers integer_above_max_value. A gateway that
//     clamps the value to its grant instead lets the response run; both are
//     fine, a reservation left behind is not.
func TestRejectedResponseCreate(t *testing.T) {
	t.Parallel()
	forStores(t, func(t *testing.T, kind string) {
		t.Run("active-response", func(t *testing.T) {
			t.Parallel()
			shape := "rejected response.create (active response) on " + kind
			const budget = 0.10
			r := newRig(t, kind, rigOptions{realtime: true})
			m := r.mint(t, r.gw(0), mintReq{user: "rejected-active", session: manualTurns(), budget: budget})
			c := connect(t, r.gw(1), m, shape)
			small := responseCreateWith(map[string]any{"max_output_tokens": 40})
			rejections := 0
			for turn := range 3 {
				c.sendAll(textItem("hi"), small, small)
				// One response.done, and one error for the second create:
				// conversation_already_has_active_response from upstream.
				var done, other bool
				for !done || !other {
					ev, out := c.waitResponse(20 * time.Second)
					switch {
					case out == gotDone && !done:
						done = true
					case out == gotError && ev.Code == "conversation_already_has_active_response":
						rejections++
						other = true
					default:
						t.Fatalf("%s: turn %d (two response.create): %v %v; events %v", shape, turn+1, out, ev, c.all())
					}
				}
				// Idle now: the rejected create must hold nothing.
				if !r.settle(t, 5*time.Second, []string{sessionAccount(m.id)}, nil) {
					_, res := r.spent(t, sessionAccount(m.id))
					t.Fatalf("%s: turn %d: %s still reserved on the session with no response running (%d rejections so far)", shape, turn+1, usd(res), rejections)
				}
			}
			// Then turns that cost (20 s of new input audio each, a short
			// reply) until the budget is spent.
			evs := append(speechAppends(20_000, "pcm", 1000), `{"type":"input_audio_buffer.commit"}`, textItem("hi"), responseCreate)
			var last event
			n := 0
			for ; n < 60; n++ {
				c.sendAll(evs...)
				ev, out := c.waitResponse(20 * time.Second)
				if out == gotClosed && c.seen(isError("budget_exceeded")) {
					out = gotBudget
				}
				if out != gotDone {
					if out != gotBudget {
						t.Errorf("%s: turn %d after the rejections: %v %v", shape, n+1, out, ev)
					}
					break
				}
				last = ev
			}
			if n == 0 {
				t.Errorf("%s: no response completed after %d rejected response.create (budget $%.2f)", shape, rejections, budget)
			}
			c.closeNormal()
			r.checkMoney(t, shape, []minted{m})
			r.checkSpentOut(t, shape, m, last, 200+10)
		})
		t.Run("max-output-tokens", func(t *testing.T) {
			t.Parallel()
			shape := "rejected response.create (max_output_tokens 5000) on " + kind
			const budget = 0.40
			r := newRig(t, kind, rigOptions{})
			m := r.mint(t, r.gw(0), mintReq{user: "rejected-max", session: manualTurns(), budget: budget})
			c := connect(t, r.gw(1), m, shape)
			c.sendAll(textItem("hi"), responseCreateWith(map[string]any{"max_output_tokens": 5000}))
			ev, out := c.waitResponse(20 * time.Second)
			switch {
			case out == gotError:
				t.Logf("%s: refused: %v", shape, ev)
			case out == gotDone:
				t.Logf("%s: the gateway clamped max_output_tokens and the response ran (status %s)", shape, ev.Status)
			default:
				t.Fatalf("%s: %v %v", shape, out, ev)
			}
			if !r.settle(t, 5*time.Second, []string{sessionAccount(m.id)}, nil) {
				_, res := r.spent(t, sessionAccount(m.id))
				t.Errorf("%s: %s still reserved on the session after the rejected response.create, with no response running", shape, usd(res))
			}
			// Expensive turns (about 2,000 text tokens in, 12 s of audio out)
			// until the budget is spent.
			big := textTurn(c, bigText, responseCreate)
			var lastDone event
			n := 0
			for ; n < 100; n++ {
				ev, out := big(n)
				if out != gotDone {
					if out == gotClosed && c.seen(isError("budget_exceeded")) {
						out = gotBudget
					}
					if out != gotBudget {
						t.Errorf("%s: turn %d after the rejection: %v %v", shape, n+1, out, ev)
					}
					break
				}
				lastDone = ev
			}
			if n == 0 {
				t.Errorf("%s: no response completed after the rejected response.create (budget $%.2f)", shape, budget)
			}
			c.closeNormal()
			r.checkMoney(t, shape, []minted{m})
			r.checkSpentOut(t, shape, m, lastDone, len(bigText)/4+50)
		})
	})
}

// manualTurns is a session config with turn detection off: the client
// commits its audio and asks for every response itself.
func manualTurns() map[string]any {
	return map[string]any{"audio": map[string]any{"input": map[string]any{"turn_detection": nil}}}
}

// bigText is about 8,000 characters: 2,000 text tokens of input, and a
// reply of "You said: " + its first 200 characters (12.6 s of audio).
var bigText = func() string {
	s := ""
	for len(s) < 8000 {
		s += "The budget of a lighthouse keeper is spent on oil, bread and patience. "
	}
	return s
}()
