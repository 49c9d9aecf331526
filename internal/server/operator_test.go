package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

func TestOperatorSessionsUsageAndScoping(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	keyA, _, _ := auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "a", nil)
	keyB, _, _ := auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "b", nil)
	_, outA := e.do("POST", "/v1/realtime/client_secrets", keyA.Reveal(), `{"user":"ann"}`)
	_, outB := e.do("POST", "/v1/realtime/client_secrets", keyB.Reveal(), `{"user":"ben"}`)
	idA := outA["voicegate"].(map[string]any)["session_id"].(string)
	idB := outB["voicegate"].(map[string]any)["session_id"].(string)

	u1 := store.Usage{TotalTokens: 150, InputTokens: 100, OutputTokens: 50, InputAudioTokens: 80, InputTextTokens: 20, CachedTokens: 10, CachedTextTokens: 10, OutputAudioTokens: 40, OutputTextTokens: 10}
	at := e.clock.Now()
	for i, rid := range []string{"resp_1", "resp_2"} {
		if _, err := e.st.RecordUsage(ctx, store.LedgerEntry{SessionID: idA, ResponseID: rid, User: "ann", AppKeyID: outAKey(e, idA), Tier: "default",
			Model: "gpt-realtime", Status: "completed", Usage: u1, CostNanoUSD: 1_500_000, At: at.Add(time.Duration(i) * time.Hour * 24)}); err != nil {
			t.Fatal(err)
		}
	}
	e.st.RecordUsage(ctx, store.LedgerEntry{SessionID: idB, ResponseID: "resp_9", User: "ben", Model: "gpt-realtime", Usage: u1, CostNanoUSD: 7, At: at})

	code, v := e.do("GET", "/voicegate/v1/sessions/"+idA, testAdmin, nil)
	if code != 200 {
		t.Fatal(code, v)
	}
	usage := v["usage"].(map[string]any)
	in := usage["input_token_details"].(map[string]any)
	if usage["total_tokens"] != 300.0 || usage["input_tokens"] != 200.0 || in["audio_tokens"] != 160.0 || in["cached_tokens"] != 20.0 ||
		in["cached_tokens_details"].(map[string]any)["text_tokens"] != 20.0 || usage["output_token_details"].(map[string]any)["audio_tokens"] != 80.0 {
		t.Errorf("usage %v", usage)
	}
	if v["cost_nanousd"] != 3_000_000.0 || v["cost_usd"] != 0.003 || v["state"] != "minted" || v["limits"] == nil || v["live"] != false {
		t.Errorf("session view %v", v)
	}
	if strings.Contains(mustJSON(v), "token_hash") {
		t.Error("token hash exposed")
	}

	// App key A sees its own session only.
	if code, _ := e.do("GET", "/voicegate/v1/sessions/"+idB, keyA.Reveal(), nil); code != 404 {
		t.Errorf("foreign session visible: %d", code)
	}
	_, list := e.do("GET", "/voicegate/v1/sessions", keyA.Reveal(), nil)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != idA {
		t.Errorf("list for key A: %v", list)
	}
	_, list = e.do("GET", "/voicegate/v1/sessions?user=ben&limit=5", testAdmin, nil)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != idB {
		t.Errorf("admin filter: %v", list)
	}
	if code, _ := e.do("DELETE", "/voicegate/v1/sessions/"+idB, keyA.Reveal(), nil); code != 404 {
		t.Errorf("key A revoked B: %d", code)
	}
	if code, _ := e.do("GET", "/voicegate/v1/keys", keyA.Reveal(), nil); code != 403 {
		t.Errorf("app key listed keys: %d", code)
	}

	// Usage grouping.
	_, u := e.do("GET", "/voicegate/v1/usage?group_by=day", testAdmin, nil)
	if rows := u["data"].([]any); len(rows) != 2 || rows[1].(map[string]any)["key"] != "2026-11-29" || rows[1].(map[string]any)["responses"] != 2.0 ||
		rows[0].(map[string]any)["key"] != "2026-11-30" { // newest first

		t.Errorf("by day: %v", u)
	}
	_, u = e.do("GET", "/voicegate/v1/usage?group_by=user&since=2026-11-29&until=2026-11-30", keyA.Reveal(), nil)
	if rows := u["data"].([]any); len(rows) != 1 || rows[0].(map[string]any)["key"] != "ann" || rows[0].(map[string]any)["cost_nanousd"] != 1_500_000.0 {
		t.Errorf("key A by user: %v", u)
	}
	if code, out := e.do("GET", "/voicegate/v1/usage?group_by=color", testAdmin, nil); code != 400 {
		t.Errorf("bad group_by: %d %v", code, out)
	}

	// Audit: app key sees only its entries.
	_, a := e.do("GET", "/voicegate/v1/audit?kind=mint", keyA.Reveal(), nil)
	if rows := a["data"].([]any); len(rows) != 1 || rows[0].(map[string]any)["session_id"] != idA {
		t.Errorf("audit for key A: %v", a)
	}
	_, a = e.do("GET", "/voicegate/v1/audit?kind=mint&limit=10", testAdmin, nil)
	if rows := a["data"].([]any); len(rows) != 2 {
		t.Errorf("audit for admin: %v", a)
	}
}

func outAKey(e *env, id string) string {
	s, _ := e.st.Session(context.Background(), id)
	return s.AppKeyID
}

func TestKeysAPI(t *testing.T) {
	e := newEnv(t, nil)
	code, out := e.do("POST", "/voicegate/v1/keys", testAdmin, `{"name":"web","tiers":["pro"]}`)
	if code != 201 {
		t.Fatal(code, out)
	}
	secret := out["value"].(string)
	id := out["id"].(string)
	code, m := e.do("POST", "/v1/realtime/client_secrets", secret, `{"tier":"pro"}`)
	if code != 200 || m["voicegate"].(map[string]any)["tier"] != "pro" {
		t.Fatalf("mint with new key: %d %v", code, m)
	}
	_, list := e.do("GET", "/voicegate/v1/keys", testAdmin, nil)
	if strings.Contains(mustJSON(list), secret) || len(list["data"].([]any)) != 1 {
		t.Fatalf("list: %v", list)
	}
	if code, _ := e.do("DELETE", "/voicegate/v1/keys/"+id, testAdmin, nil); code != 200 {
		t.Fatal(code)
	}
	if code, _ := e.do("POST", "/v1/realtime/client_secrets", secret, nil); code != 401 {
		t.Fatalf("revoked key still mints: %d", code)
	}
	if code, out := e.do("POST", "/voicegate/v1/keys", testAdmin, `{"name":""}`); code != 400 {
		t.Fatal(code, out)
	}
	if code, _ := e.do("DELETE", "/voicegate/v1/keys/key_nope", testAdmin, nil); code != 404 {
		t.Fatal(code)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, nil)
	if code, _ := e.do("GET", "/healthz", "", nil); code != 200 {
		t.Fatal(code)
	}
	if code, _ := e.do("GET", "/readyz", "", nil); code != 200 {
		t.Fatal(code)
	}
	e.do("POST", "/v1/realtime/client_secrets", "wrong", nil)
	e.mint(nil)
	resp, err := http.Get(e.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`vg_mints_total{outcome="ok",tier="default"} 1`,
		`vg_auth_failures_total{endpoint="mint",reason="invalid"} 1`,
		`vg_http_requests_total{code="200",route="POST /v1/realtime/client_secrets"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.down.down.Store(true)
	if code, _ := e.do("GET", "/readyz", "", nil); code != 503 {
		t.Errorf("readyz with closed store: %d", code)
	}
	if code, out := e.do("POST", "/v1/realtime/client_secrets", testAdmin, nil); code != 503 {
		t.Errorf("mint with closed store: %d %v", code, out)
	} else if c, _ := errOf(out); c != "store_unavailable" {
		t.Errorf("code %q", c)
	}
}

// downStore fails Ping while down is set.
type downStore struct {
	store.Store
	down atomic.Bool
}

// CreateSession fails like every write to a store that is down.
func (d *downStore) CreateSession(ctx context.Context, sess *store.Session) error {
	if d.down.Load() {
		return fmt.Errorf("down: %w", store.ErrUnavailable)
	}
	return d.Store.CreateSession(ctx, sess)
}

func (d *downStore) Ping(ctx context.Context) error {
	if d.down.Load() {
		return store.ErrUnavailable
	}
	return d.Store.Ping(ctx)
}
