package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
)

// budgetRun is the JSON line printed by gw_agents_budget.mjs.
type budgetRun struct {
	SessionID string `json:"sessionId"`
	Model     string `json:"model"`
	Turns     int    `json:"turns"` // spoken turns sent
	Responses []struct {
		ID            string         `json:"id"`
		Status        string         `json:"status"`
		StatusDetails map[string]any `json:"statusDetails"`
		Usage         struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	} `json:"responses"`
	Errors []struct {
		Type           string `json:"type"`
		Code           string `json:"code"`
		Message        string `json:"message"`
		EventID        string `json:"eventId"`
		AfterResponses int    `json:"afterResponses"`
	} `json:"errors"`
	SDKErrors []string `json:"sdkErrors"`
	Close     *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"close"`
	CapHit  bool   `json:"capHit"`
	Stalled string `json:"stalled"`
}

// TestAgentsSDKBudgetServerVAD: the official Agents SDK with server VAD
// completes turns on a $0.05 budget and is stopped with budget_exceeded once
// the budget is spent, not before. The client only streams speech; the
// gateway mediates every VAD turn (create_response:false upstream, its own
// response.create after reserving), so the budget holds exactly.
func TestAgentsSDKBudgetServerVAD(t *testing.T) {
	const budgetNano = 50_000_000 // $0.05, the budget_usd the script mints
	s := startStack(t)
	dump := filepath.Join(s.dir, "agents_budget.jsonl")
	var run budgetRun
	s.runScript(t, "gw_agents_budget.mjs", dump, &run)
	t.Logf("run: session %s model %s, %d turns spoken, %d responses, errors %+v, close %+v",
		run.SessionID, run.Model, run.Turns, len(run.Responses), run.Errors, run.Close)
	defer func() {
		if t.Failed() {
			t.Logf("events received:\n%s", eventTrace(t, dump))
			t.Logf("gateway audit (limits):\n%s", limitAudit(t, s.dbPath))
			metrics := s.do(t, http.MethodGet, "/metrics", "", "", http.StatusOK, nil)
			for _, l := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(l, "vg_budget_") || strings.HasPrefix(l, "vg_limit_refusals_total") {
					t.Logf("metric %s", l)
				}
			}
			t.Logf("gateway stderr:\n%s", s.stderr.String())
		}
	}()

	// How the loop ended.
	if run.CapHit {
		t.Fatalf("the session was still open after %d turns: the budget never stopped it", run.Turns)
	}
	if run.Stalled != "" {
		t.Fatalf("stalled: %s (responses %+v, errors %+v)", run.Stalled, run.Responses, run.Errors)
	}
	if len(run.SDKErrors) > 0 {
		t.Errorf("the SDK raised errors: %q", run.SDKErrors)
	}

	// Turns completed before the budget ran out.
	completed := 0
	statuses := make([]string, len(run.Responses))
	for i, r := range run.Responses {
		statuses[i] = r.Status
		if r.Status == "completed" {
			completed++
		}
	}
	t.Logf("response statuses: %v", statuses)
	if completed < 2 {
		t.Errorf("completed turns = %d, want at least 2 (statuses %v)", completed, statuses)
	}

	// Every error event is the final budget_exceeded: a refusal of anything
	// the SDK does by default (a locked field, an event type, a rate limit)
	// fails here. The gateway may send two (the refused turn, then the
	// fatal one that ends the session), both after the last response.
	if len(run.Errors) == 0 {
		t.Errorf("no error event: the session did not end with budget_exceeded")
	}
	for _, e := range run.Errors {
		if e.Code != govern.CodeBudgetExceeded {
			t.Errorf("error event %+v: only budget_exceeded is expected", e)
		} else if e.AfterResponses != len(run.Responses) {
			t.Errorf("budget_exceeded after %d responses, but %d responses came: a turn ran after the budget was declared spent", e.AfterResponses, len(run.Responses))
		}
	}
	if run.Close == nil || run.Close.Code != 1008 || run.Close.Reason != govern.CodeBudgetExceeded {
		t.Errorf("close = %+v, want 1008 %s", run.Close, govern.CodeBudgetExceeded)
	}

	// The gateway's ledger equals the simulator's, entry for entry:
	// responses and the input transcriptions the SDK turns on by default.
	simEntries := simLedger(t, s)
	gw := gatewayLedger(t, s.dbPath)
	if len(gw) != len(simEntries) {
		t.Errorf("ledger sizes: gateway %d, simulator %d", len(gw), len(simEntries))
	}
	simSessions := map[string]bool{}
	var simResponses []sim.LedgerEntry
	for _, e := range simEntries {
		simSessions[e.SessionID] = true
		if e.Kind == "" {
			simResponses = append(simResponses, e)
		}
		g, ok := gw[e.ResponseID]
		if !ok {
			t.Errorf("simulator billed %s %q, missing from the gateway ledger", e.ResponseID, e.Kind)
			continue
		}
		if g.Usage != e.Flat() || g.Model != e.Model || g.Status != e.Status || g.Kind != e.Kind {
			t.Errorf("entry %s: gateway %+v, simulator %+v", e.ResponseID, g, e)
		}
		if c, ok := meter.DefaultTable().Cost(e.Model, e.Flat()); !ok || c != g.CostNanoUSD {
			t.Errorf("entry %s: gateway cost %d, price table %d (priced %v)", e.ResponseID, g.CostNanoUSD, c, ok)
		}
	}
	if len(simSessions) != 1 {
		t.Errorf("simulator sessions = %d, want the one upstream session of the gateway session", len(simSessions))
	}
	var spent int64
	for id, g := range gw {
		if g.SessionID != run.SessionID {
			t.Errorf("gateway entry %s of session %s, want %s", id, g.SessionID, run.SessionID)
		}
		spent += g.CostNanoUSD
	}
	if len(simResponses) != len(run.Responses) {
		t.Fatalf("simulator billed %d responses, the client saw %d", len(simResponses), len(run.Responses))
	}
	for i, r := range run.Responses {
		if simResponses[i].ResponseID != r.ID || simResponses[i].Status != r.Status {
			t.Errorf("response %d: client %s %s, simulator %s %s", i, r.ID, r.Status, simResponses[i].ResponseID, simResponses[i].Status)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The budget holds exactly.
	t.Logf("spent %d of %d nano-dollars over %d ledger entries", spent, budgetNano, len(gw))
	if spent > budgetNano {
		t.Errorf("spent %d nano-dollars, over the budget of %d", spent, budgetNano)
	}

	// Not before: the money left cannot pay for the smallest response the
	// gateway would still start. Any next response sees at least the whole
	// conversation so far as input, which is at least the last response's
	// input plus its output (its output is re-sent as context), so the
	// gateway's input estimate for it is at least lastIn+lastOut; the
	// smallest output allowance the gateway starts a response with is
	// govern.DefaultMinOutputTokens (20); and the gateway reserves
	// meter.MaxCost of those before any response runs. So
	// MaxCost(model, 20, lastIn+lastOut) is a lower bound of the cheapest
	// reservation the gateway could have granted: money left below it
	// means the session was stopped only once no further turn fit.
	last := lastResponse(t, run, gw)
	inputEstimate := int(last.Usage.InputTokens + last.Usage.OutputTokens)
	smallest := meter.DefaultTable().MaxCost(run.Model, govern.DefaultMinOutputTokens, inputEstimate)
	left := budgetNano - spent
	t.Logf("left %d nano-dollars; smallest response (20 output tokens, input estimate %d) %d", left, inputEstimate, smallest)
	if left >= smallest {
		t.Errorf("stopped with %d nano-dollars left, enough for a response of %d (20 output tokens on an input of %d tokens)",
			left, smallest, inputEstimate)
	}
}

// lastResponse is the gateway's ledger entry of the last response the client
// saw.
func lastResponse(t *testing.T, run budgetRun, gw map[string]store.LedgerEntry) store.LedgerEntry {
	t.Helper()
	if len(run.Responses) == 0 {
		t.Fatal("no response")
	}
	r := run.Responses[len(run.Responses)-1]
	e, ok := gw[r.ID]
	if !ok || e.Kind != "" || e.Usage.InputTokens != r.Usage.InputTokens || e.Usage.OutputTokens != r.Usage.OutputTokens {
		t.Fatalf("last response %s (usage %+v): gateway entry %+v", r.ID, r.Usage, e)
	}
	return e
}

// eventTrace renders the events the script received, one a line, without
// audio payloads (for failure reports).
func eventTrace(t *testing.T, file string) string {
	t.Helper()
	var b strings.Builder
	for _, raw := range receivedEvents(t, file) {
		var ev map[string]any
		if json.Unmarshal([]byte(raw), &ev) != nil {
			continue
		}
		switch ev["type"] {
		case "response.output_audio.delta", "response.output_audio_transcript.delta":
			continue
		case "session.created", "session.updated", "response.done", "error", "input_audio_buffer.committed",
			"conversation.item.input_audio_transcription.completed":
			fmt.Fprintf(&b, "%.600s\n", raw)
		default:
			fmt.Fprintf(&b, "%v\n", ev["type"])
		}
	}
	return b.String()
}

// limitAudit renders the gateway's "limit" audit entries (why a budget
// refused or ended the session), for failure reports.
func limitAudit(t *testing.T, dbPath string) string {
	t.Helper()
	rows, err := openDB(t, dbPath).Query(`SELECT session_id, detail FROM audit WHERE kind = 'limit' ORDER BY seq`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, detail string
		if err := rows.Scan(&id, &detail); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "%s %s\n", id, detail)
	}
	return b.String()
}
