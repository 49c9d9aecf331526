package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/token"
)

func hashOf(s string) string { return token.Hash(s) }

func TestKeysCLIAndAppKeyMint(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	env := map[string]string{"VOICEGATE_STORE": "sqlite:" + db, "OPENAI_API_KEY": "sk-unused"}
	var created struct{ ID, Value string }
	if err := json.Unmarshal([]byte(cli(t, env, "keys", "create", "--name", "web", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if _, err := token.Parse(created.Value); err != nil || !strings.HasPrefix(created.ID, "key_") {
		t.Fatalf("created %+v: %v", created, err)
	}
	list := cli(t, env, "keys", "list")
	if !strings.Contains(list, created.ID) || !strings.Contains(list, "web") || strings.Contains(list, created.Value) {
		t.Fatalf("list:\n%s", list)
	}

	p := start(t, env, "serve", "--addr", "127.0.0.1:0", "--upstream", "sim")
	code, m := post(t, p.base+"/v1/realtime/client_secrets", created.Value, `{"user":"u9"}`)
	if code != 200 {
		t.Fatalf("mint with app key: %d %v", code, m)
	}
	sid := m["voicegate"].(map[string]any)["session_id"].(string)
	p.stop()

	out := cli(t, env, "sessions", "list", "--json")
	var views []map[string]any
	if err := json.Unmarshal([]byte(out), &views); err != nil || len(views) != 1 || views[0]["id"] != sid || views[0]["app_key_id"] != created.ID {
		t.Fatalf("sessions list: %v %s", err, out)
	}
	show := cli(t, env, "sessions", "show", sid)
	if !strings.Contains(show, "u9") || !strings.Contains(show, "minted") {
		t.Fatalf("show:\n%s", show)
	}
	if out := cli(t, env, "usage", "--group-by", "model", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("usage: %s", out)
	}

	cli(t, env, "keys", "revoke", created.ID)
	p = start(t, env, "serve", "--addr", "127.0.0.1:0", "--upstream", "sim")
	if code, _ := post(t, p.base+"/v1/realtime/client_secrets", created.Value, `{}`); code != 401 {
		t.Fatalf("revoked key minted: %d", code)
	}
	assertOnlyHashes(t, db, created.Value)
}

func TestDevServesPageAndPrintsAdminKey(t *testing.T) {
	p := start(t, nil, "dev", "--addr", "127.0.0.1:0", "--store", "memory")
	line, _, _ := strings.Cut(p.stdout.String(), "\n")
	if !strings.HasPrefix(line, "voicegate dev: http://127.0.0.1:") || !strings.Contains(line, "admin key: vgadmin_") {
		t.Fatalf("dev line %q", line)
	}
	admin := strings.TrimSpace(line[strings.Index(line, "admin key: ")+len("admin key: "):])
	resp, err := http.Get(p.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "/v1/realtime/client_secrets") {
		t.Fatalf("demo page: %d", resp.StatusCode)
	}
	code, m := post(t, p.base+"/v1/realtime/client_secrets", admin, `{}`)
	if code != 200 {
		t.Fatalf("mint with printed admin key: %d %v", code, m)
	}
	c, first, code := connect(t, p.base, m["value"].(string))
	if code != 101 || !strings.Contains(first, "session.created") {
		t.Fatalf("dev connect: %d %s", code, first)
	}
	c.Close(1000, "")
	if strings.Contains(p.stderr.String(), admin) {
		t.Error("admin key in logs")
	}
	_ = context.Background
}
