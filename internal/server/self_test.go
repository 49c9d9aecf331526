package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

// TestSelfSession: GET /voicegate/v1/session with a session token reads
// that session — usage, cost and what is left of its budget and time — but
// not its pinned configuration; other credentials and unknown tokens are
// refused; after a revocation the view says so.
func TestSelfSession(t *testing.T) {
	e := newEnv(t, nil)
	out := e.mint(map[string]any{"user": "ann", "limits": map[string]any{"budget_usd": 0.5, "max_session_seconds": 300},
		"session": map[string]any{"type": "realtime", "model": "gpt-realtime", "instructions": "Secret prompt."}})
	tok := out["value"].(string)
	id := out["voicegate"].(map[string]any)["session_id"].(string)
	if _, err := e.st.RecordUsage(context.Background(), store.LedgerEntry{SessionID: id, ResponseID: "resp_1", User: "ann", Model: "gpt-realtime",
		Usage: store.Usage{InputTokens: 10, OutputTokens: 20, TotalTokens: 30}, CostNanoUSD: 125_000_000, At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}

	code, v := e.do(http.MethodGet, "/voicegate/v1/session", tok, nil)
	if code != http.StatusOK {
		t.Fatalf("self view: %d %v", code, v)
	}
	for field, want := range map[string]any{"id": id, "user": "ann", "state": "minted", "cost_usd": 0.125, "responses": float64(1),
		"remaining_budget_usd": 0.375, "remaining_seconds": float64(300), "object": "voicegate.session"} {
		if v[field] != want {
			t.Errorf("%s = %v, want %v", field, v[field], want)
		}
	}
	if _, ok := v["config"]; ok {
		t.Errorf("the self view shows the pinned config: %v", v["config"])
	}
	if u, _ := v["usage"].(map[string]any); u["total_tokens"] != float64(30) {
		t.Errorf("usage %v", v["usage"])
	}

	for _, c := range []struct{ name, bearer string }{{"no token", ""}, {"admin key", testAdmin}, {"unknown token", "ek_vg_" + "x"}} {
		if code, out := e.do(http.MethodGet, "/voicegate/v1/session", c.bearer, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v", c.name, code, out)
		}
	}

	if code, out := e.do(http.MethodDelete, "/voicegate/v1/sessions/"+id, testAdmin, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, out)
	}
	_, v = e.do(http.MethodGet, "/voicegate/v1/session", tok, nil)
	if v["state"] != "revoked" || v["refusal"] != "revoked" || v["end_reason"] != "session_revoked" {
		t.Errorf("after revocation: state %v refusal %v end_reason %v", v["state"], v["refusal"], v["end_reason"])
	}
}
