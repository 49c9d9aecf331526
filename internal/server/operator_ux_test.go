package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

// TestOperatorListsRefuseUnknownFilters: a misspelt filter is a 400 naming
// it, never a silently unfiltered list.
func TestOperatorListsRefuseUnknownFilters(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{
		"/voicegate/v1/sessions?usr=alice",
		"/voicegate/v1/sessions?state=sleeping",
		"/voicegate/v1/usage?users=alice",
		"/voicegate/v1/audit?type=mint",
		"/voicegate/v1/audit?before=x",
		"/voicegate/v1/keys?name=web",
	} {
		code, out := e.do("GET", path, testAdmin, nil)
		if c, param := errOf(out); code != 400 || (c != "unknown_parameter" && c != "invalid_value") || param == nil {
			t.Errorf("GET %s: %d %v", path, code, out)
		}
	}
}

// TestOperatorListsNewestFirstWithPaging: sessions and the audit trail come
// newest first, pages chained by their cursors (before=created_at,
// before=seq) with has_more; app keys newest first; times RFC 3339.
func TestOperatorListsNewestFirstWithPaging(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for i := range 5 {
		out := e.mint(map[string]any{"user": fmt.Sprintf("u%d", i)})
		ids = append(ids, out["voicegate"].(map[string]any)["session_id"].(string))
		e.clock.Add(time.Second)
	}
	slices.Reverse(ids)
	var got []string
	q := "/voicegate/v1/sessions?limit=2"
	for page := 0; ; page++ {
		_, out := e.do("GET", q, testAdmin, nil)
		data := out["data"].([]any)
		for _, d := range data {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		if out["has_more"] != true {
			break
		}
		last := data[len(data)-1].(map[string]any)["created_at"].(string)
		if _, err := time.Parse(time.RFC3339, last); err != nil {
			t.Fatalf("created_at %q: %v", last, err)
		}
		q = "/voicegate/v1/sessions?limit=2&before=" + url.QueryEscape(last)
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("sessions pages = %v, want %v", got, ids)
	}

	var seqs []float64
	q = "/voicegate/v1/audit?kind=mint&limit=3"
	for {
		_, out := e.do("GET", q, testAdmin, nil)
		data := out["data"].([]any)
		for _, d := range data {
			m := d.(map[string]any)
			seqs = append(seqs, m["seq"].(float64))
			if _, err := time.Parse(time.RFC3339, m["at"].(string)); err != nil {
				t.Errorf("audit at: %v", err)
			}
			if _, err := time.Parse(time.RFC3339, m["detail"].(map[string]any)["expires_at"].(string)); err != nil {
				t.Errorf("audit detail expires_at: %v", err)
			}
		}
		if out["has_more"] != true {
			break
		}
		q = fmt.Sprintf("/voicegate/v1/audit?kind=mint&limit=3&before=%d", int64(seqs[len(seqs)-1]))
	}
	if len(seqs) != 5 || !slices.IsSortedFunc(seqs, func(a, b float64) int { return int(b - a) }) {
		t.Errorf("audit seqs = %v, want 5 newest first", seqs)
	}

	ctx := context.Background()
	auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "old", nil)
	e.clock.Add(time.Minute)
	code, k := e.do("POST", "/voicegate/v1/keys", testAdmin, `{"name":"new"}`)
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(k["created_at"])); code != 201 || err != nil {
		t.Errorf("created key: %d %v (%v)", code, k, err)
	}
	_, keys := e.do("GET", "/voicegate/v1/keys", testAdmin, nil)
	if data := keys["data"].([]any); len(data) != 2 || data[0].(map[string]any)["name"] != "new" {
		t.Errorf("keys = %v, want newest first", keys)
	}
	_, rev := e.do("POST", "/voicegate/v1/users/u1/revoke", testAdmin, nil)
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(rev["revoked_at"])); err != nil {
		t.Errorf("user revocation %v: %v", rev, err)
	}
}

// TestSessionLiveSecondsCountWhileLive: a live session's live_seconds
// include its current connection, from its latest connect, on top of the
// earlier ones.
func TestSessionLiveSecondsCountWhileLive(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.mint(map[string]any{"user": "ann"})["voicegate"].(map[string]any)["session_id"].(string)
	connect := func() {
		if _, err := e.st.UpdateSession(ctx, id, func(s *store.Session) error {
			s.State, s.Transport = store.StateLive, "websocket"
			if s.StartedAt.IsZero() {
				s.StartedAt = e.clock.Now()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AppendAudit(ctx, store.AuditEntry{At: e.clock.Now(), Kind: "connect", SessionID: id, User: "ann"}); err != nil {
			t.Fatal(err)
		}
	}
	liveSecs := func() float64 {
		_, v := e.do("GET", "/voicegate/v1/sessions/"+id, testAdmin, nil)
		return v["live_seconds"].(float64)
	}
	connect()
	e.clock.Add(30 * time.Second)
	if got := liveSecs(); got != 30 {
		t.Errorf("live_seconds after 30 s live = %v", got)
	}
	// Disconnect after 40 s, idle 100 s, reconnect, 5 s more.
	e.clock.Add(10 * time.Second)
	e.st.UpdateSession(ctx, id, func(s *store.Session) error { s.State, s.LiveSeconds = store.StateIdle, 40; return nil })
	e.clock.Add(100 * time.Second)
	if got := liveSecs(); got != 40 {
		t.Errorf("live_seconds while idle = %v", got)
	}
	connect()
	e.clock.Add(5 * time.Second)
	if got := liveSecs(); got != 45 {
		t.Errorf("live_seconds 5 s into a reconnect = %v", got)
	}
	_, list := e.do("GET", "/voicegate/v1/sessions?state=live", testAdmin, nil)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["live_seconds"] != 45.0 {
		t.Errorf("list = %v", list)
	}
}

// TestModelsListsTheCallersTiers: GET /v1/models in OpenAI's list shape
// with the models of the caller's tiers, for the admin key, app keys and
// session tokens; GET /v1/models/{id} retrieves one.
func TestModelsListsTheCallersTiers(t *testing.T) {
	e := newEnv(t, nil) // tiers: default (the known models), pro (gpt-realtime-mini)
	ctx := context.Background()
	defKey, _, _ := auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "web", nil)
	proKey, _, _ := auth.CreateKey(ctx, e.st, rand.Reader, e.clock.Now(), "pro", []string{"pro"})
	models := func(bearer string) []string {
		t.Helper()
		code, out := e.do("GET", "/v1/models", bearer, nil)
		if code != 200 || out["object"] != "list" {
			t.Fatalf("models: %d %v", code, out)
		}
		var ids []string
		for _, d := range out["data"].([]any) {
			m := d.(map[string]any)
			if m["object"] != "model" || m["owned_by"] != "system" || m["created"].(float64) <= 0 {
				t.Errorf("model entry %v", m)
			}
			ids = append(ids, m["id"].(string))
		}
		return ids
	}
	def := e.srv.Govern.Tier("default").AllowedModels
	if len(def) < 2 || !slices.Contains(def, "gpt-realtime-mini") {
		t.Fatalf("default tier models %v", def)
	}
	if got := models(testAdmin); !slices.Equal(got, def) {
		t.Errorf("admin: %v", got)
	}
	if got := models(defKey.Reveal()); !slices.Equal(got, def) {
		t.Errorf("default app key: %v", got)
	}
	if got := models(proKey.Reveal()); !slices.Equal(got, []string{"gpt-realtime-mini"}) {
		t.Errorf("pro app key: %v", got)
	}
	_, out := e.do("POST", "/v1/realtime/client_secrets", proKey.Reveal(), `{"tier":"pro","session":{"model":"gpt-realtime-mini"}}`)
	tok, _ := out["value"].(string)
	if got := models(tok); !slices.Equal(got, []string{"gpt-realtime-mini"}) {
		t.Errorf("pro session token: %v", got)
	}
	if code, m := e.do("GET", "/v1/models/gpt-realtime-mini", tok, nil); code != 200 || m["id"] != "gpt-realtime-mini" || m["object"] != "model" {
		t.Errorf("retrieve: %d %v", code, m)
	}
	if code, m := e.do("GET", "/v1/models/gpt-realtime", tok, nil); code != 404 {
		t.Errorf("retrieve outside the tier: %d %v", code, m)
	}
	for _, bad := range []string{"", "ek_vg_garbage", "vgk_garbage"} {
		if code, _ := e.do("GET", "/v1/models", bad, nil); code != 401 {
			t.Errorf("models with %q: %d", bad, code)
		}
	}
}
