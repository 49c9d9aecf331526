package e2e_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/testenv"
)

// agentsRun is what gw_agents_unchanged.mjs reports.
type agentsRun struct {
	Errors    []string `json:"errors"`
	ToolCalls []string `json:"toolCalls"`
	Dones     []struct {
		ID     string   `json:"id"`
		Status string   `json:"status"`
		Output []string `json:"output"`
	} `json:"dones"`
	SawText string `json:"sawText"` // every event the client received
}

// TestAgentsSDKUnchanged: the Agents SDK's natural code — an agent with
// instructions and a tool, a RealtimeSession with its defaults (its default
// model, tracing "auto", semantic VAD, input transcription) — against a
// plain mint on the default tier: zero error events, a spoken turn and a
// tool call complete, and every response is metered. With instructions
// pinned at mint, the client never receives them and the model gets the
// pinned ones, not the page's.
func TestAgentsSDKUnchanged(t *testing.T) {
	s := startStack(t)
	wsURL := "wss" + strings.TrimPrefix(s.base, "https") + "/v1/realtime"
	run := func(t *testing.T, session string) (agentsRun, string) {
		t.Helper()
		var minted struct {
			Value     string `json:"value"`
			Voicegate struct {
				SessionID string `json:"session_id"`
			} `json:"voicegate"`
		}
		s.do(t, http.MethodPost, "/v1/realtime/client_secrets", s.appKey, `{"session":`+session+`,"user":"sdk-user"}`, http.StatusOK, &minted)
		var r agentsRun
		testenv.RunNode(t, testenv.RequireNodeDir(t), "gw_agents_unchanged.mjs", []string{
			"VG_WS_URL=" + wsURL, "VG_TOKEN=" + minted.Value, "NODE_EXTRA_CA_CERTS=" + s.caFile,
			"DUMP_FILE=" + filepath.Join(s.dir, "agents_unchanged.jsonl"),
		}, &r)
		return r, minted.Voicegate.SessionID
	}
	check := func(t *testing.T, r agentsRun, sessionID string) {
		t.Helper()
		if len(r.Errors) != 0 {
			t.Errorf("error events: %v", r.Errors)
		}
		if len(r.ToolCalls) != 1 || r.ToolCalls[0] == "" {
			t.Errorf("tool calls %v, want get_weather called once with a city", r.ToolCalls)
		}
		if len(r.Dones) < 3 || r.Dones[1].Output[0] != "function_call" {
			t.Fatalf("responses %+v: want a spoken turn, a function call and the answer after it", r.Dones)
		}
		// Every response is metered: the gateway's ledger has them with
		// the simulator's usage, before the client saw them.
		gw := gatewayLedger(t, s.dbPath)
		for _, d := range r.Dones {
			if e, ok := gw[d.ID]; !ok || e.SessionID != sessionID || e.CostNanoUSD <= 0 {
				t.Errorf("response %s not metered for %s: %+v", d.ID, sessionID, e)
			}
		}
	}

	t.Run("PlainMint", func(t *testing.T) {
		r, id := run(t, `{"type":"realtime"}`)
		check(t, r, id)
		// The page's instructions reached the model.
		for _, e := range simLedger(t, s) {
			if e.ResponseID == r.Dones[0].ID && !strings.Contains(e.Instructions, "weather assistant") {
				t.Errorf("the model ran with instructions %q, want the agent's", e.Instructions)
			}
		}
	})
	t.Run("PinnedInstructions", func(t *testing.T) {
		const pinned = "PINNED-OPERATOR-PROMPT: you sell umbrellas."
		r, id := run(t, `{"type":"realtime","instructions":"`+pinned+`"}`)
		// The SDK's own instructions differ from the pinned ones: the
		// update applies without them and the client is told once.
		var notices []string
		for _, e := range r.Errors {
			if !strings.Contains(e, "session_config_locked") {
				notices = append(notices, e)
			}
		}
		r.Errors = notices
		check(t, r, id)
		if strings.Contains(r.SawText, "PINNED-OPERATOR-PROMPT") {
			t.Error("the pinned instructions reached the client")
		}
		n := 0
		for _, e := range simLedger(t, s) {
			for _, d := range r.Dones {
				if e.ResponseID == d.ID {
					n++
					if e.Instructions != pinned {
						t.Errorf("response %s ran with instructions %q, want the pinned ones", d.ID, e.Instructions)
					}
				}
			}
		}
		if n != len(r.Dones) {
			t.Errorf("%d of %d responses found in the simulator's ledger", n, len(r.Dones))
		}
	})
}

// TestAgentsSDKHandoff: a two-agent handoff works when the mint pinned
// both agents: the switch to the billing agent applies with no error
// event, and the model answers with the billing agent's instructions.
func TestAgentsSDKHandoff(t *testing.T) {
	s := startStack(t)
	wsURL := "wss" + strings.TrimPrefix(s.base, "https") + "/v1/realtime"
	var minted struct {
		Value string `json:"value"`
	}
	s.do(t, http.MethodPost, "/v1/realtime/client_secrets", s.appKey, `{"session":{"type":"realtime","instructions":"You triage the caller."},
		"agents":[{"instructions":"You triage the caller.","tools":["transfer_to_billing"]},{"instructions":"You handle billing questions.","tools":[]}],
		"user":"handoff-user"}`, http.StatusOK, &minted)
	var r struct {
		Errors []string `json:"errors"`
		Dones  []struct {
			ID     string   `json:"id"`
			Output []string `json:"output"`
		} `json:"dones"`
		HandedOff string `json:"handedOff"`
	}
	testenv.RunNode(t, testenv.RequireNodeDir(t), "gw_agents_handoff.mjs", []string{
		"VG_WS_URL=" + wsURL, "VG_TOKEN=" + minted.Value, "NODE_EXTRA_CA_CERTS=" + s.caFile,
	}, &r)
	if len(r.Errors) != 0 || r.HandedOff != "billing" {
		t.Fatalf("errors %v, handed off to %q", r.Errors, r.HandedOff)
	}
	if len(r.Dones) < 2 || r.Dones[0].Output[0] != "function_call" {
		t.Fatalf("responses %+v: want the handoff call, then the billing agent's answer", r.Dones)
	}
	for _, e := range simLedger(t, s) {
		if e.ResponseID == r.Dones[1].ID && e.Instructions != "You handle billing questions." {
			t.Errorf("after the handoff the model ran with %q", e.Instructions)
		}
	}
}
