package govern

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// reservation is one response sent upstream: the budget it holds and what
// the input estimate assumed.
type reservation struct {
	// id is the store reservation ("" when nothing is held: no budget
	// applies, or the response started with no response.create of ours).
	id string
	// eventID is the event_id of the response.create sent upstream (the
	// gateway's own, so a rejection can be matched); clientEventID is the
	// client's, restored in the error event of a rejection.
	eventID, clientEventID string
	added                  int // inputEstimate.added when it was made
	// local is set for a grant made from the local view while the store
	// was unreachable: the store never saw it, so its cost is charged,
	// not settled.
	local    bool
	granted  int64
	accounts []store.BudgetAccount
	// maxOut bounds the response's output tokens: once it is done they
	// are input of every later response.
	maxOut int
	// conv is set when the response writes to the default conversation
	// (not out-of-band); mediated when the governor sent it for a turn
	// the server's turn detection committed.
	conv, mediated bool
}

// reserve holds the bounded cost of one response on every budget account
// and returns the response.create to send upstream: the client's frame
// (or, for a mediated turn, the gateway's) with the gateway's event_id and
// max_output_tokens set to what the reservation covers, so the response
// can never cost more than was reserved (given the input bound). A
// response that cannot be afforded at all is refused with budget_exceeded,
// and the session is ended when nothing of its own is still outstanding
// that could free budget.
//
// It is the one reservation routine: client turns, mediated server-VAD
// turns and out-of-band responses all go through it.
func (s *Session) reserve(ctx context.Context, frame []byte, clientEventID string, mediated bool) ([]byte, *Refusal) {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(frame, &ev); err != nil {
		return nil, &Refusal{Code: "invalid_event", Message: "event is not a json object", EventID: clientEventID}
	}
	var resp map[string]json.RawMessage
	if raw, ok := ev["response"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &resp); err != nil {
			return nil, &Refusal{Code: "invalid_event", Message: "response must be an object", Param: "response", EventID: clientEventID}
		}
	}
	if resp == nil {
		resp = map[string]json.RawMessage{}
	}
	oob := isOutOfBand(resp["conversation"])

	s.mu.Lock()
	maxOut := s.in.sessionMaxOut
	if m := maxTokensValue(resp["max_output_tokens"]); m >= 0 {
		maxOut = m
	}
	if maxOut == 0 {
		maxOut = s.g.defaultMaxOut()
	}
	in := s.inputLocked() + len(frame)/4
	added := s.in.added
	s.seq++
	r := &reservation{
		eventID: fmt.Sprintf("vg_rc_%s_%d", s.rec.ID, s.seq), clientEventID: clientEventID,
		added: added, maxOut: maxOut, conv: !oob, mediated: mediated,
	}
	id := fmt.Sprintf("%s/r%d", s.rec.ID, s.seq)
	ownOutstanding := len(s.pending) + len(s.byResp)
	s.mu.Unlock()

	accounts := Accounts(s.rec, s.tier, s.g.now())
	if len(accounts) > 0 {
		tab, model := s.g.prices(), s.rec.Model
		want := tab.MaxCost(model, maxOut, in)
		minOut := min(s.g.minOut(), maxOut)
		res, local, ref := s.hold(ctx, id, accounts, want, tab.MaxCost(model, minOut, in), clientEventID)
		if ref != nil {
			return nil, ref
		}
		if res.Granted == 0 {
			ref := budgetExceeded(clientEventID)
			s.refused(ctx, ref, map[string]any{"remaining_nanousd": res.Remaining, "local": local, "mediated": mediated})
			// A local view errs low: it refuses the response but never
			// ends the session.
			if !local && ownOutstanding == 0 && s.exhausted(ctx, accounts, in) {
				s.end(budgetSpent())
			}
			return nil, ref
		}
		covered := maxOut
		if res.Granted < want {
			covered = max(tab.MaxOutputTokensFor(model, res.Granted, in), minOut)
			s.g.Metrics.clamp(s.tier.Name, model)
		}
		s.g.Metrics.reservedAdd(s.tier.Name, model, res.Granted)
		if local {
			s.g.Metrics.localGrant(s.tier.Name, model)
		}
		r.id, r.local, r.granted, r.accounts, r.maxOut = id, local, res.Granted, accounts, covered
		resp["max_output_tokens"] = json.RawMessage(strconv.Itoa(covered))
		ev["response"], _ = json.Marshal(resp)
	}
	ev["event_id"], _ = json.Marshal(r.eventID)
	out, _ := json.Marshal(ev)

	s.mu.Lock()
	s.pending = append(s.pending, r)
	s.setIdleLocked()
	s.mu.Unlock()
	return out, nil
}

// isOutOfBand reports whether a response.create's "conversation" is
// "none" (the response writes to no conversation).
func isOutOfBand(raw json.RawMessage) bool {
	var c string
	return json.Unmarshal(raw, &c) == nil && c == "none"
}

// hold reserves between lo and want on accounts for the reservation id: in
// the shared store, or from the process's local view while the store is
// unreachable (local is then true; also when the local view alone
// refused). A refusal is returned when neither can decide; a budget that
// cannot afford lo is Granted 0 with no refusal.
func (s *Session) hold(ctx context.Context, id string, accounts []store.BudgetAccount, want, lo int64, eventID string) (res store.ReserveResult, local bool, ref *Refusal) {
	g := s.g
	charged, settled := g.local.snapshot(accounts), g.spoolEmpty()
	if !settled {
		// Costs this instance charged during an outage may still wait in
		// the spool, unseen by the store: its own view bounds the grant
		// until they are replayed.
		if av, ok := g.local.avail(accounts); ok {
			if av < lo {
				return store.ReserveResult{Remaining: max(av, 0)}, true, nil
			}
			want = min(want, av)
		}
	}
	res, err := g.Store.Reserve(ctx, store.Reservation{ID: id, Session: s.rec.ID, Accounts: accounts, Want: want, Min: lo})
	if err == nil {
		if g.local.setOutage(false) {
			g.logger().Info("budget store reachable again: reservations are shared again")
		}
		// The tightest account's remaining bounds every other one from
		// below.
		remaining := make([]int64, len(accounts))
		for i := range remaining {
			remaining[i] = res.Remaining
		}
		g.local.learn(accounts, remaining, charged, settled)
		g.local.prune(g.now())
		return res, false, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		g.logger().Error("budget reservation failed", "session_id", s.rec.ID, "err", err)
		return res, false, unavailable(eventID, "budget")
	}
	if g.local.setOutage(true) {
		g.logger().Warn("budget store unreachable: granting responses from local accounting until it is back", "err", err)
	}
	granted, remaining, unknown := g.local.grant(accounts, want, lo)
	if unknown {
		g.logger().Error("budget reservation failed: account never learned before the store became unreachable", "session_id", s.rec.ID, "err", err)
		return res, false, unavailable(eventID, "budget")
	}
	return store.ReserveResult{Granted: granted, Remaining: remaining}, true, nil
}

// release gives back a reservation whose response never ran: locally for
// a local grant, else by settling it at zero.
func (s *Session) release(ctx context.Context, r *reservation) {
	switch {
	case r.id == "":
	case r.local:
		s.g.local.release(r.accounts, r.granted)
	default:
		if err := s.g.Store.Settle(ctx, r.id, 0); err != nil {
			s.g.logger().Error("budget release failed", "session_id", s.rec.ID, "err", err)
		}
	}
}

// settle turns r into its actual cost on the budgets: Settle of the
// store's reservation, or Charge when the store never saw one (a local
// grant, or a response that started with no reservation of ours).
func (s *Session) settle(ctx context.Context, r *reservation, cost int64) {
	accounts := r.accounts
	if r.id == "" {
		accounts = Accounts(s.rec, s.tier, s.g.now())
	}
	if len(accounts) == 0 {
		return
	}
	var err error
	if r.id != "" && !r.local {
		err = s.g.Store.Settle(ctx, r.id, cost)
	} else {
		// Charge reaches the store once (spooled while it is down); the
		// local view keeps the cost until a read of the store is known
		// to include it.
		err = s.g.Store.Charge(ctx, accounts, cost)
		s.g.local.done(accounts, r.granted, cost)
	}
	if err != nil {
		s.g.logger().Error("budget settle failed", "session_id", s.rec.ID, "err", err)
	}
}

// exhausted reports whether an account's spend (reservations of other
// sessions aside, since they may be released) leaves less than the least
// the session can do: a minimal response with input estimate in, or, in a
// transcription session, transcribing a tenth of a second; it audits which
// account it was.
func (s *Session) exhausted(ctx context.Context, accounts []store.BudgetAccount, in int) bool {
	g := s.g
	minCost := g.prices().MaxCost(s.rec.Model, g.minOut(), in)
	if isTranscription(decodeObject(s.rec.Config)) {
		s.mu.Lock()
		model := s.trModelLocked()
		s.mu.Unlock()
		minCost = s.transcriptionBound(model, 100)
	}
	charged, settled := g.local.snapshot(accounts), g.spoolEmpty()
	remaining := make([]int64, len(accounts))
	var out bool
	for i, a := range accounts {
		spent, reserved, err := g.Store.Spent(ctx, a.Key)
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				g.logger().Error("budget read failed", "session_id", s.rec.ID, "err", err)
			}
			return false
		}
		remaining[i] = a.LimitNano - spent - reserved
		if !out && a.LimitNano-spent < minCost {
			g.audit(ctx, s.rec, "limit", map[string]any{"limit": "budget", "account": accountKind(a.Key), "spent_nanousd": spent})
			out = true
		}
	}
	g.local.learn(accounts, remaining, charged, settled)
	return out
}

// seed learns every account of the session from the store once, at the
// session's first client event, so local accounting can take over if the
// store goes down before its first response.
func (s *Session) seed(ctx context.Context) {
	s.mu.Lock()
	done := s.seeded
	s.seeded = true
	s.mu.Unlock()
	if done {
		return
	}
	accounts := Accounts(s.rec, s.tier, s.g.now())
	if len(accounts) == 0 {
		return
	}
	charged, settled := s.g.local.snapshot(accounts), s.g.spoolEmpty()
	remaining := make([]int64, len(accounts))
	for i, a := range accounts {
		spent, reserved, err := s.g.Store.Spent(ctx, a.Key)
		if err != nil {
			s.g.logger().Warn("budget read failed", "session_id", s.rec.ID, "err", err)
			return
		}
		remaining[i] = a.LimitNano - spent - reserved
	}
	s.g.local.learn(accounts, remaining, charged, settled)
}

// responseCreated gives the response that just started the oldest
// reservation sent upstream (upstream handles events in order, and a
// rejected response.create left the queue with its error event). A
// response that starts with none is tracked and charged when done. A
// response created after the client left is cancelled at once.
func (s *Session) responseCreated(ctx context.Context, frame []byte) {
	ev, err := realtime.DecodeResponseEvent(frame)
	if err != nil {
		s.g.logger().Error("undecodable response.created", "session_id", s.rec.ID, "err", err)
		return
	}
	s.mu.Lock()
	var r *reservation
	adopt := false
	if len(s.pending) > 0 {
		r = s.pending[0]
		s.pending = s.pending[1:]
	} else {
		r = &reservation{added: s.in.added, maxOut: s.in.boundOut(s.g.defaultMaxOut()), conv: ev.Response.ConversationID != nil}
		adopt = s.h.Sideband
		if !adopt {
			s.g.Metrics.unreservedResponse(s.tier.Name, s.rec.Model)
			s.g.logger().Warn("a response started upstream with no reservation; it is charged when done", "session_id", s.rec.ID, "response_id", ev.Response.ID)
		}
	}
	s.byResp[ev.Response.ID] = r
	gone := s.gone
	s.setIdleLocked()
	s.mu.Unlock()
	if gone || adopt && !s.adoptClientResponse(ctx, r) {
		s.cancel(ctx, ev.Response.ID)
	}
}

// upstreamError releases the reservation of a response.create upstream
// rejected (its error names the gateway's event_id) and gives the client
// its own event_id back.
func (s *Session) upstreamError(ctx context.Context, frame []byte) []byte {
	e, err := realtime.DecodeErrorEvent(frame)
	if err != nil {
		return frame
	}
	if e.Error.Code == "input_audio_buffer_commit_empty" {
		s.commitFailed()
	}
	if e.Error.EventID == "" {
		return frame
	}
	s.mu.Lock()
	var r *reservation
	for i, p := range s.pending {
		if p.eventID == e.Error.EventID {
			r = p
			s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
			break
		}
	}
	s.setIdleLocked()
	waiting := r != nil && r.conv && s.vad.waiting > 0
	s.mu.Unlock()
	if r == nil {
		return frame
	}
	s.release(ctx, r)
	if waiting {
		s.startWaitingTurn(ctx)
	}
	if r.mediated {
		// The client never sent this response.create: tell it that a turn
		// was not answered, without an id it does not know.
		return realtime.RewriteErrorEventID(frame, "")
	}
	return realtime.RewriteErrorEventID(frame, r.clientEventID)
}

// responseDone records a finished response in the ledger, settles its
// reservation at its exact cost, updates the input estimate and ends a
// session whose budget is spent.
func (s *Session) responseDone(ctx context.Context, frame []byte) {
	ev, err := realtime.DecodeResponseEvent(frame)
	if err != nil {
		s.g.logger().Error("undecodable response.done", "session_id", s.rec.ID, "err", err)
		s.g.Metrics.error("bad_response_done")
		return
	}
	resp := ev.Response
	s.mu.Lock()
	r, ok := s.byResp[resp.ID]
	delete(s.byResp, resp.ID)
	if !ok {
		// A response.done with no response.created seen: charge it.
		r = &reservation{added: s.in.added, conv: resp.ConversationID != nil}
	}
	model := s.model
	s.mu.Unlock()

	var u store.Usage
	if resp.Usage != nil {
		u = resp.Usage.Flat()
	}
	e := s.entry(resp.ID, "", model, resp.Status, u)
	inserted, err := s.record(ctx, e)
	if inserted || err != nil {
		// Even an entry the ledger could not take is charged: the budget
		// must not lose what upstream billed.
		s.settle(ctx, r, e.CostNanoUSD)
		s.g.Metrics.metered(e.Model, e.Tier, e.Status, e.CostNanoUSD, true)
		inserted = true
	} else {
		// A duplicate response.done: metered already; give back what this
		// one reserved, if anything.
		s.release(ctx, r)
	}

	s.mu.Lock()
	if inserted {
		s.totals.Usage = s.totals.Usage.Add(e.Usage)
		s.totals.CostNanoUSD += e.CostNanoUSD
		s.totals.Responses++
	}
	// The next context is at most this response's input plus its output
	// plus what was added since it was reserved. An out-of-band response
	// says nothing about the conversation.
	if r.conv && r.added >= s.in.baseAdded {
		s.in.base, s.in.baseAdded = int(u.InputTokens+u.OutputTokens)+1, r.added
	}
	in := s.inputLocked()
	outstanding := len(s.pending) + len(s.byResp)
	waiting := r.conv && s.vad.waiting > 0 && !s.gone
	s.setIdleLocked()
	s.mu.Unlock()

	if waiting {
		s.startWaitingTurn(ctx)
		return
	}
	if outstanding > 0 {
		return
	}
	if accounts := Accounts(s.rec, s.tier, s.g.now()); len(accounts) > 0 && s.exhausted(ctx, accounts, in) {
		s.g.Metrics.Refused("budget", s.tier.Name, s.rec.Model)
		s.end(budgetSpent())
	}
}

// entry builds the ledger entry of one metered usage.
func (s *Session) entry(responseID, kind, model, status string, u store.Usage) store.LedgerEntry {
	cost, ok := s.g.prices().Cost(model, u)
	if !ok {
		s.g.Metrics.error("unpriced_model")
		s.g.logger().Error("no price for model; usage recorded at zero cost", "model", model, "response_id", responseID)
	}
	return store.LedgerEntry{
		SessionID: s.rec.ID, ResponseID: responseID, Kind: kind, User: s.rec.User, AppKeyID: s.rec.AppKeyID,
		Tier: s.rec.Tier, Model: model, Status: status, Usage: u, CostNanoUSD: cost, At: s.g.now(),
	}
}

// recordFor bounds the retries of one ledger write. The write is on the
// upstream path (the client waits for the response.done it meters), so a
// store that keeps failing is given up on after this long and the entry
// logged whole instead.
const recordFor = 10 * time.Second

// record writes e to the ledger, retrying a failing store with backoff;
// it reports whether e was new (false for a duplicate).
func (s *Session) record(ctx context.Context, e store.LedgerEntry) (bool, error) {
	ctx = context.WithoutCancel(ctx)
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(recordFor)
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		inserted, err := s.g.Store.RecordUsage(wctx, e)
		cancel()
		if err == nil {
			return inserted, nil
		}
		if time.Now().Add(backoff).After(deadline) {
			s.g.Metrics.error("ledger_write_failed")
			s.g.logger().Error("ledger entry not recorded", "session_id", e.SessionID, "response_id", e.ResponseID, "kind", e.Kind,
				"model", e.Model, "status", e.Status, "usage", e.Usage, "cost_nanousd", e.CostNanoUSD, "err", err)
			return false, err
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, time.Second)
	}
}

// configMaxOutput reads max_output_tokens of a GA session config: its
// number, or 0 for "inf" or absent.
func configMaxOutput(cfg json.RawMessage) int {
	var c struct {
		MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
	}
	if json.Unmarshal(cfg, &c) != nil {
		return 0
	}
	return max(maxTokensValue(c.MaxOutputTokens), 0)
}

// maxTokensValue is a max_output_tokens value: n, 0 for "inf", -1 when
// absent or malformed.
func maxTokensValue(raw json.RawMessage) int {
	if len(raw) == 0 {
		return -1
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n > 0 {
		return n
	}
	var str string
	if json.Unmarshal(raw, &str) == nil && str == "inf" {
		return 0
	}
	return -1
}
