package money

import (
	"fmt"
	"testing"
	"time"
)

// TestOutOfBand: out-of-band responses (conversation "none" over the
// default context, with "input": [] and with input items of their own),
// mixed with normal turns, and every third round a normal response and an
// out-of-band one running at the same time. Every response asks for
// max_output_tokens 200 so that two reservations fit at once. The loop
// ends on budget_exceeded; the ledgers are equal and the session's cost is
// within its budget.
func TestOutOfBand(t *testing.T) {
	t.Parallel()
	const budget = 0.10
	forStores(t, func(t *testing.T, kind string) {
		shape := "out-of-band responses on " + kind
		r := newRig(t, kind, rigOptions{})
		m := r.mint(t, r.gw(0), mintReq{user: "oob", budget: budget})
		c := connect(t, r.gw(1), m, shape)
		item := func(text string) map[string]any {
			return map[string]any{"type": "message", "role": "user",
				"content": []any{map[string]any{"type": "input_text", "text": text}}}
		}
		const maxOut = 200
		oobs := []string{
			responseCreateWith(map[string]any{"conversation": "none", "max_output_tokens": maxOut}),
			responseCreateWith(map[string]any{"conversation": "none", "input": []any{}, "max_output_tokens": maxOut}),
			responseCreateWith(map[string]any{"conversation": "none", "max_output_tokens": maxOut, "input": []any{
				item("Classify this conversation in a long sentence, out of band please.")}}),
		}
		create := responseCreateWith(map[string]any{"max_output_tokens": maxOut})
		// wait reads n responses (response.done) or the end of the loop.
		wait := func(round, n int) bool {
			for range n {
				ev, out := c.waitResponse(30 * time.Second)
				if out == gotClosed && c.seen(isError("budget_exceeded")) {
					out = gotBudget
				}
				switch out {
				case gotDone:
					continue
				case gotBudget:
					t.Logf("%s: budget_exceeded in round %d", shape, round)
				default:
					t.Errorf("%s: round %d: %v %v; events %v", shape, round, out, ev, c.all())
				}
				return false
			}
			return true
		}
		round := 0
		for ; round < 200; round++ {
			text := textItem(fmt.Sprintf("Normal turn %d: tell me about the tides.", round))
			oob := oobs[round%len(oobs)]
			var ok bool
			switch round % 3 {
			case 0: // normal turn, then an out-of-band response
				ok = c.sendAll(text, create) && wait(round, 1) && c.send(oob) && wait(round, 1)
			case 1: // out-of-band response, then a normal turn
				ok = c.sendAll(oob) && wait(round, 1) && c.sendAll(text, create) && wait(round, 1)
			case 2: // both at once
				ok = c.sendAll(text, create, oob) && wait(round, 2)
			}
			if !ok {
				break
			}
		}
		if round == 200 {
			t.Errorf("%s: the budget never ran out", shape)
		}
		if round == 0 {
			t.Errorf("%s: budget_exceeded in the first round", shape)
		}
		c.closeNormal()
		r.checkMoney(t, shape, []minted{m})
	})
}
