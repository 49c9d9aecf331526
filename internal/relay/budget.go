package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// reserve holds the bounded cost of the response a response.create starts
// on every budget account, before it is forwarded. When only a smaller
// grant fits, response.max_output_tokens is lowered to what it covers; the
// forwarded frame always carries the covered allowance, so the response
// can never cost more than was reserved (given the input bound). A
// response that cannot be afforded at all is refused with
// budget_exceeded, and the session is closed when nothing of its own is
// still pending that could free budget.
func (v *governor) reserve(ctx context.Context, frame []byte, eventID string) ([]byte, []byte) {
	accounts := Accounts(v.rec, v.tier, v.g.now())
	if len(accounts) == 0 {
		return frame, nil
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(frame, &ev); err != nil {
		return nil, realtime.ErrorEvent("invalid_event", "event is not a json object", eventID)
	}
	var resp map[string]json.RawMessage
	if raw, ok := ev["response"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &resp); err != nil {
			return nil, realtime.ErrorEvent("invalid_event", "response must be an object", eventID)
		}
	}
	if resp == nil {
		resp = map[string]json.RawMessage{}
	}

	v.mu.Lock()
	maxOut := v.sessionMaxOut
	if m := maxTokensValue(resp["max_output_tokens"]); m >= 0 {
		maxOut = m
	}
	if maxOut == 0 {
		maxOut = v.defaultMaxOut()
	}
	in := v.base + v.added - v.baseAdded
	added := v.added
	v.seq++
	id := fmt.Sprintf("%s/r%d", v.rec.ID, v.seq)
	ownPending := len(v.pending) + len(v.byResp)
	v.mu.Unlock()

	tab, model := v.g.prices(), v.rec.Model
	want := tab.MaxCost(model, maxOut, in)
	minOut := min(v.minOut(), maxOut)
	res, err := v.g.Store.Reserve(ctx, store.Reservation{ID: id, Accounts: accounts, Want: want, Min: tab.MaxCost(model, minOut, in)})
	if err != nil {
		v.g.logger().Error("budget reservation failed", "session_id", v.rec.ID, "err", err)
		return nil, realtime.ErrorEvent(CodeGovernUnavailable, "the gateway cannot check its budget right now", eventID)
	}
	if res.Granted == 0 {
		v.g.Metrics.Refused("budget", v.tier.Name, model)
		v.audit(ctx, "limit", map[string]any{"limit": "budget", "remaining_nanousd": res.Remaining})
		if ownPending == 0 && v.exhausted(ctx, accounts, in) {
			v.close(CodeBudgetExceeded, "the budget is spent")
		}
		return nil, realtime.ErrorEvent(CodeBudgetExceeded, "the remaining budget cannot afford a response", eventID)
	}
	covered := maxOut
	if res.Granted < want {
		covered = max(tab.MaxOutputTokensFor(model, res.Granted, in), minOut)
		v.g.Metrics.clamp(v.tier.Name, model)
	}
	v.g.Metrics.reservedAdd(v.tier.Name, model, res.Granted)
	resp["max_output_tokens"] = json.RawMessage(strconv.Itoa(covered))
	rb, _ := json.Marshal(resp)
	ev["response"] = rb
	out, _ := json.Marshal(ev)

	v.mu.Lock()
	v.pending = append(v.pending, reservation{id: id, added: added})
	v.mu.Unlock()
	return out, nil
}

func (v *governor) defaultMaxOut() int {
	if v.g.DefaultMaxOutputTokens > 0 {
		return v.g.DefaultMaxOutputTokens
	}
	return DefaultMaxOutputTokens
}

func (v *governor) minOut() int {
	if v.g.MinOutputTokens > 0 {
		return v.g.MinOutputTokens
	}
	return DefaultMinOutputTokens
}

// ResponseCreated implements ResponseWatcher: the oldest pending
// reservation belongs to the response that just started. A response with
// none (started by the server's turn detection) is charged when done.
func (v *governor) ResponseCreated(_ context.Context, responseID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.pending) == 0 {
		// Started by the server's turn detection: it takes the standing
		// reservation (if any; else it is charged when done).
		r := v.stand
		if r.id == "" {
			r = reservation{added: v.added}
		}
		v.byResp[responseID] = r
		v.stand = reservation{}
		return
	}
	v.byResp[responseID] = v.pending[0]
	v.pending = v.pending[1:]
}

// ResponseDone implements Governor: settle the response's reservation with
// its actual cost (or charge it when it had none), update the input bound,
// and close the session once no response fits its budget any more.
func (v *governor) ResponseDone(ctx context.Context, e store.LedgerEntry) {
	v.mu.Lock()
	r, ok := v.byResp[e.ResponseID]
	delete(v.byResp, e.ResponseID)
	if !ok {
		r = reservation{added: v.added}
	}
	// The next context is at most this response's input plus its output
	// (assistant audio is re-sent at half its output rate) plus what the
	// client added since this response was reserved.
	if nb := int(e.Usage.InputTokens+e.Usage.OutputTokens) + 1; nb > 0 && r.added >= v.baseAdded {
		v.base, v.baseAdded = nb, r.added
	}
	in := v.base + v.added - v.baseAdded
	ownPending := len(v.pending) + len(v.byResp)
	if v.stand.id != "" {
		ownPending++
	}
	v.mu.Unlock()

	accounts := Accounts(v.rec, v.tier, v.g.now())
	if len(accounts) == 0 {
		return
	}
	var err error
	if r.id != "" {
		err = v.g.Store.Settle(ctx, r.id, e.CostNanoUSD)
	} else {
		err = v.g.Store.Charge(ctx, accounts, e.CostNanoUSD)
	}
	if err != nil {
		v.g.logger().Error("budget settle failed", "session_id", v.rec.ID, "response_id", e.ResponseID, "err", err)
		return
	}
	if ownPending > 0 {
		return
	}
	if v.exhausted(ctx, accounts, in) {
		v.close(CodeBudgetExceeded, "the budget is spent")
	}
}

// exhausted reports whether an account's spend (reservations of other
// sessions aside, since they may be released) leaves less than a minimal
// response with input estimate in; it audits which account it was.
func (v *governor) exhausted(ctx context.Context, accounts []store.BudgetAccount, in int) bool {
	minCost := v.g.prices().MaxCost(v.rec.Model, v.minOut(), in)
	for _, a := range accounts {
		spent, _, err := v.g.Store.Spent(ctx, a.Key)
		if err != nil {
			v.g.logger().Error("budget read failed", "session_id", v.rec.ID, "err", err)
			return false
		}
		if a.LimitNano-spent < minCost {
			v.g.Metrics.Refused("budget", v.tier.Name, v.rec.Model)
			v.audit(ctx, "limit", map[string]any{"limit": "budget", "account": accountKind(a.Key), "spent_nanousd": spent})
			return true
		}
	}
	return false
}

// SessionEnded implements Ender: reservations of responses that never
// started or were never metered are released.
func (v *governor) SessionEnded(ctx context.Context) {
	v.mu.Lock()
	var ids []string
	for _, r := range v.pending {
		ids = append(ids, r.id)
	}
	for _, r := range v.byResp {
		if r.id != "" {
			ids = append(ids, r.id)
		}
	}
	if v.stand.id != "" {
		ids = append(ids, v.stand.id)
	}
	v.pending, v.byResp, v.stand = nil, map[string]reservation{}, reservation{}
	v.mu.Unlock()
	for _, id := range ids {
		if err := v.g.Store.Settle(ctx, id, 0); err != nil {
			v.g.logger().Error("budget release failed", "session_id", v.rec.ID, "err", err)
		}
	}
}

// accountKind is the non-identifying part of an account key.
func accountKind(key string) string {
	for i, n := 0, 0; i < len(key); i++ {
		if key[i] == ':' {
			n++
			if n == 2 || (n == 1 && key[:i] == "session") || (n == 1 && key[:i] == "key") {
				return key[:i]
			}
		}
	}
	return key
}
