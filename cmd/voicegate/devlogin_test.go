package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDevLogin: dev answers the demo page's sign-in — any name gets a
// token on the default tier, limits may only tighten it, and the token
// reads its own session — but only from its own pages (JSON, same
// origin); serve has no such route.
func TestDevLogin(t *testing.T) {
	p := start(t, nil, "dev", "--addr", "127.0.0.1:0", "--store", "memory")
	req := func(method, path, ctype, origin, bearer, body string) (int, map[string]any) {
		t.Helper()
		r, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &out)
		return resp.StatusCode, out
	}
	if code, out := req("GET", "/dev/v1/client_secrets", "", "", "", ""); code != 200 || out["object"] != "voicegate.dev_login" {
		t.Fatalf("probe: %d %v", code, out)
	}
	code, out := req("POST", "/dev/v1/client_secrets", "application/json", p.base, "",
		`{"user":"zoe","session":{"type":"realtime","model":"gpt-realtime"},"limits":{"budget_usd":0.25}}`)
	if code != 200 {
		t.Fatalf("dev sign-in: %d %v", code, out)
	}
	vg, _ := out["voicegate"].(map[string]any)
	limits, _ := vg["limits"].(map[string]any)
	if vg["user"] != "zoe" || vg["tier"] != "default" || limits["budget_usd"] != 0.25 {
		t.Errorf("minted %v", vg)
	}
	tok, _ := out["value"].(string)
	if code, v := req("GET", "/voicegate/v1/session", "", "", tok, ""); code != 200 || v["user"] != "zoe" || v["remaining_budget_usd"] != 0.25 {
		t.Errorf("self view: %d %v", code, v)
	}
	for _, c := range []struct {
		name, ctype, origin, body string
		want                      int
	}{
		{"another origin", "application/json", "http://evil.example", `{"user":"zoe"}`, 403},
		{"a form post", "text/plain", "", `{"user":"zoe"}`, 415},
		{"no name", "application/json", "", `{"user":"  "}`, 400},
		{"a tier", "application/json", "", `{"user":"zoe","tier":"default"}`, 400},
		{"a looser limit", "application/json", "", `{"user":"zoe","limits":{"max_session_seconds":99999}}`, 400},
	} {
		if code, out := req("POST", "/dev/v1/client_secrets", c.ctype, c.origin, "", c.body); code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, code, out, c.want)
		}
	}

	s := start(t, nil, "serve", "--addr", "127.0.0.1:0", "--store", "memory", "--upstream", "sim", "--admin-key", strings.Repeat("k", 40))
	for _, m := range []string{"GET", "POST"} {
		r, _ := http.NewRequest(m, s.base+"/dev/v1/client_secrets", strings.NewReader(`{"user":"zoe"}`))
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("serve answers %s /dev/v1/client_secrets with 200", m)
		}
	}
}
