package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
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
	v.awaitSettling(ctx)

	v.mu.Lock()
	maxOut := v.sessionMaxOut
	if m := maxTokensValue(resp["max_output_tokens"]); m >= 0 {
		maxOut = m
	}
	if maxOut == 0 {
		maxOut = v.defaultMaxOut()
	}
	in := v.base + v.added - v.baseAdded + v.inFlightOut()
	added := v.added
	v.seq++
	id := fmt.Sprintf("%s/r%d", v.rec.ID, v.seq)
	ownPending := len(v.pending) + len(v.byResp)
	v.mu.Unlock()

	tab, model := v.g.prices(), v.rec.Model
	want := tab.MaxCost(model, maxOut, in)
	minOut := min(v.minOut(), maxOut)
	res, local, refusal := v.hold(ctx, id, accounts, want, tab.MaxCost(model, minOut, in), eventID)
	if refusal != nil {
		return nil, refusal
	}
	if res.Granted == 0 {
		v.g.Metrics.Refused("budget", v.tier.Name, model)
		v.audit(ctx, "limit", map[string]any{"limit": "budget", "remaining_nanousd": res.Remaining, "local": local})
		// A local view errs low: it refuses the response but never ends
		// the session.
		if !local && ownPending == 0 && v.exhausted(ctx, accounts, in) {
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
	if local {
		v.g.Metrics.localGrant(v.tier.Name, model)
	}
	resp["max_output_tokens"] = json.RawMessage(strconv.Itoa(covered))
	rb, _ := json.Marshal(resp)
	ev["response"] = rb
	out, _ := json.Marshal(ev)

	v.mu.Lock()
	v.pending = append(v.pending, reservation{id: id, added: added, local: local, granted: res.Granted, accounts: accounts, maxOut: covered})
	v.mu.Unlock()
	return out, nil
}

// inFlightOut is the output bound of the session's responses that are
// reserved or running but not yet settled. Their output becomes input of
// any response that starts after them (an out-of-band response beside a
// running one, or the server-VAD turn that follows it) before the base
// estimate can include it, so the input estimate adds it. v.mu is held.
func (v *governor) inFlightOut() int {
	n := 0
	for r := range v.unsettled() {
		n += r.maxOut
	}
	return n
}

// unsettled yields the session's reservations of responses asked for or
// running, not yet settled: pending ones, then started ones (the standing
// VAD reservation is apart: its response has not started). v.mu is held.
func (v *governor) unsettled() iter.Seq[reservation] {
	return func(yield func(reservation) bool) {
		for _, r := range v.pending {
			if !yield(r) {
				return
			}
		}
		for _, r := range v.byResp {
			if !yield(r) {
				return
			}
		}
	}
}

// boundOut is the output bound of a response nothing reserved for: the
// bound the governor pinned upstream, else the session's, else the
// default. v.mu is held.
func (v *governor) boundOut() int {
	switch {
	case v.pinnedOut > 0:
		return v.pinnedOut
	case v.sessionMaxOut > 0:
		return v.sessionMaxOut
	}
	return v.defaultMaxOut()
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
			r = reservation{added: v.added, maxOut: v.boundOut()}
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
	if r.local {
		accounts = r.accounts // the windows it was granted in
	}
	if len(accounts) == 0 {
		return
	}
	var err error
	if r.id != "" && !r.local {
		err = v.g.Store.Settle(ctx, r.id, e.CostNanoUSD)
	} else {
		// No reservation the store knows of: a local grant, or a
		// response nothing reserved for. Charge reaches the store once
		// (spooled while it is down); the local view keeps the cost
		// until a read of the store is known to include it.
		err = v.g.Store.Charge(ctx, accounts, e.CostNanoUSD)
		v.g.local.done(accounts, r.granted, e.CostNanoUSD)
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
	charged, settled := v.g.local.snapshot(accounts), v.g.spoolEmpty()
	remaining := make([]int64, len(accounts))
	var out bool
	for i, a := range accounts {
		spent, reserved, err := v.g.Store.Spent(ctx, a.Key)
		if err != nil {
			if errors.Is(err, store.ErrUnavailable) {
				// Local accounting is on: the outage was logged once.
				v.g.logger().Debug("budget read failed", "session_id", v.rec.ID, "err", err)
			} else {
				v.g.logger().Error("budget read failed", "session_id", v.rec.ID, "err", err)
			}
			return false
		}
		remaining[i] = a.LimitNano - spent - reserved
		if !out && a.LimitNano-spent < minCost {
			v.g.Metrics.Refused("budget", v.tier.Name, v.rec.Model)
			v.audit(ctx, "limit", map[string]any{"limit": "budget", "account": accountKind(a.Key), "spent_nanousd": spent})
			out = true
		}
	}
	v.g.local.learn(accounts, remaining, charged, settled)
	return out
}

// SessionEnded implements Ender: reservations of responses that never
// started or were never metered are released.
func (v *governor) SessionEnded(ctx context.Context) {
	v.mu.Lock()
	var held []reservation
	for r := range v.unsettled() {
		if r.id != "" {
			held = append(held, r)
		}
	}
	if v.stand.id != "" {
		held = append(held, v.stand)
	}
	v.pending, v.byResp, v.stand = nil, map[string]reservation{}, reservation{}
	v.finishing = nil
	v.wakeSettled()
	v.mu.Unlock()
	for _, r := range held {
		v.releaseHold(ctx, r)
	}
}

// releaseHold gives back a reservation whose response never ran: locally
// for a local grant, else by settling it at zero.
func (v *governor) releaseHold(ctx context.Context, r reservation) {
	if r.local {
		v.g.local.release(r.accounts, r.granted)
		return
	}
	if err := v.g.Store.Settle(ctx, r.id, 0); err != nil {
		v.g.logger().Error("budget release failed", "session_id", v.rec.ID, "err", err)
	}
}

// hold reserves between lo and want on accounts for the reservation id: in
// the shared store, or from the process's local view while the store is
// unreachable (local is then true; also when the local view alone refused).
// A refusal is an error event for eventID when neither can decide; a budget
// that cannot afford lo is Granted 0 with no refusal.
func (v *governor) hold(ctx context.Context, id string, accounts []store.BudgetAccount, want, lo int64, eventID string) (res store.ReserveResult, local bool, refusal []byte) {
	charged, settled := v.g.local.snapshot(accounts), v.g.spoolEmpty()
	if !settled {
		// Costs this instance charged during an outage may still wait in
		// the spool, unseen by the store: its own view bounds the grant
		// until they are replayed.
		if av, ok := v.g.local.avail(accounts); ok {
			if av < lo {
				return store.ReserveResult{Remaining: max(av, 0)}, true, nil
			}
			want = min(want, av)
		}
	}
	res, err := v.g.Store.Reserve(ctx, store.Reservation{ID: id, Accounts: accounts, Want: want, Min: lo})
	if err == nil {
		if v.g.local.setOutage(false) {
			v.g.logger().Info("budget store reachable again: reservations are shared again")
		}
		// The tightest account's remaining bounds every other one from
		// below.
		remaining := make([]int64, len(accounts))
		for i := range remaining {
			remaining[i] = res.Remaining
		}
		v.g.local.learn(accounts, remaining, charged, settled)
		v.g.local.prune(v.g.now())
		return res, false, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		v.g.logger().Error("budget reservation failed", "session_id", v.rec.ID, "err", err)
		return res, false, realtime.ErrorEvent(CodeGovernUnavailable, "the gateway cannot check its budget right now", eventID)
	}
	if v.g.local.setOutage(true) {
		v.g.logger().Warn("budget store unreachable: granting responses from local accounting until it is back", "err", err)
	}
	granted, remaining, unknown := v.g.local.grant(accounts, want, lo)
	if unknown {
		v.g.logger().Error("budget reservation failed: account never learned before the store became unreachable", "session_id", v.rec.ID, "err", err)
		return res, false, realtime.ErrorEvent(CodeGovernUnavailable, "the gateway cannot check its budget right now", eventID)
	}
	return store.ReserveResult{Granted: granted, Remaining: remaining}, true, nil
}

// seed learns every account of the session from the store once, at the
// session's first client event, so local accounting can take over if the
// store goes down before its first response.
func (v *governor) seed(ctx context.Context) {
	v.mu.Lock()
	done := v.seeded
	v.seeded = true
	v.mu.Unlock()
	if done {
		return
	}
	accounts := Accounts(v.rec, v.tier, v.g.now())
	if len(accounts) == 0 {
		return
	}
	charged, settled := v.g.local.snapshot(accounts), v.g.spoolEmpty()
	remaining := make([]int64, len(accounts))
	for i, a := range accounts {
		spent, reserved, err := v.g.Store.Spent(ctx, a.Key)
		if err != nil {
			v.g.logger().Warn("budget read failed", "session_id", v.rec.ID, "err", err)
			return
		}
		remaining[i] = a.LimitNano - spent - reserved
	}
	v.g.local.learn(accounts, remaining, charged, settled)
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
