package money

import (
	"fmt"
	"sync"
	"testing"
)

// TestSharedUserBudget: 20 concurrent sessions of one user (spread over
// both instances on Redis) each loop text turns until budget_exceeded,
// all on one user_day budget of $0.10. Half of them ask for small
// responses (max_output_tokens 150) so that several reservations fit at
// once and really compete. The user's total recorded cost stays within
// the day budget and the ledger equals the simulator's.
func TestSharedUserBudget(t *testing.T) {
	t.Parallel()
	const (
		sessions = 20
		userDay  = 0.10
	)
	forStores(t, func(t *testing.T, kind string) {
		shape := "20 sessions on one user budget on " + kind
		r := newRig(t, kind, rigOptions{userDayUSD: userDay})
		var ms []minted
		var cs []*client
		for i := range sessions {
			m := r.mint(t, r.gw(i), mintReq{user: "shared"})
			ms = append(ms, m)
			cs = append(cs, connect(t, r.gw(i+1), m, fmt.Sprintf("%s session %d", shape, i)))
		}
		var wg sync.WaitGroup
		for i, c := range cs {
			create := responseCreate
			if i%2 == 1 {
				create = responseCreateWith(map[string]any{"max_output_tokens": 150})
			}
			wg.Add(1)
			go func() { // owner: test; exits when the session's loop ends
				defer wg.Done()
				loopTurns(t, fmt.Sprintf("%s session %d", shape, i), c, 200,
					textTurn(c, "Shared budget, tell me something worth a few cents", create))
			}()
		}
		wg.Wait()
		for _, c := range cs {
			c.closeNormal()
		}
		r.checkMoney(t, shape, ms)
	})
}
