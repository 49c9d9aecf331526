package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// runCLI runs a one-shot command and returns its exit error, stdout and
// stderr.
func runCLI(env map[string]string, args ...string) (error, string, string) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, envFunc(env), strings.NewReader(""), &out, &errb)
	return err, out.String(), errb.String()
}

// TestEverySubcommandHasItsOwnHelp: -h of every command and verb exits 0
// and prints, on stdout, its usage, its own flags and an example; the store
// commands show --store but none of serve's flags.
func TestEverySubcommandHasItsOwnHelp(t *testing.T) {
	cases := []struct {
		args     []string
		flags    []string // its own flags, all shown
		storeCmd bool
	}{
		{[]string{"serve"}, []string{"-addr", "-store", "-upstream", "-admin-key", "-tls-cert"}, false},
		{[]string{"dev"}, []string{"-tls", "-addr", "-store"}, false},
		{[]string{"version"}, nil, false},
		{[]string{"keys", "create"}, []string{"-name", "-tier", "-json", "-store"}, true},
		{[]string{"keys", "list"}, []string{"-limit", "-before", "-json", "-store"}, true},
		{[]string{"keys", "revoke"}, []string{"-store"}, true},
		{[]string{"sessions", "list"}, []string{"-user", "-state", "-since", "-before", "-limit", "-json", "-store"}, true},
		{[]string{"sessions", "show"}, []string{"-json", "-store"}, true},
		{[]string{"sessions", "revoke"}, []string{"-json", "-store"}, true},
		{[]string{"usage"}, []string{"-user", "-since", "-until", "-group-by", "-json", "-store"}, true},
		{[]string{"audit"}, []string{"-kind", "-session", "-user", "-since", "-until", "-before", "-limit", "-json", "-store"}, true},
	}
	for _, c := range cases {
		for _, h := range []string{"-h", "--help"} {
			name := strings.Join(append(c.args, h), " ")
			err, out, _ := runCLI(nil, append(c.args, h)...)
			if err != nil {
				t.Errorf("%s: exit error %v", name, err)
				continue
			}
			if !strings.HasPrefix(out, "usage: voicegate "+strings.Join(c.args, " ")) || !strings.Contains(out, "\nExample:\n  ") ||
				!strings.Contains(out[strings.Index(out, "\nExample:"):], "voicegate "+c.args[0]) {
				t.Errorf("%s: help\n%s", name, out)
			}
			for _, f := range c.flags {
				if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
					t.Errorf("%s: flag %s missing\n%s", name, f, out)
				}
			}
			if c.storeCmd && (strings.Contains(out, "-upstream") || strings.Contains(out, "-admin-key") || strings.Contains(out, "-jwks-url")) {
				t.Errorf("%s: shows serve's flags\n%s", name, out)
			}
		}
	}
	// The groups list their verbs and exit 0; a missing verb is an error.
	for _, g := range []string{"keys", "sessions"} {
		if err, out, _ := runCLI(nil, g, "-h"); err != nil || !strings.Contains(out, "usage: voicegate "+g+" <subcommand>") {
			t.Errorf("%s -h: %v\n%s", g, err, out)
		}
		if err, _, errOut := runCLI(nil, g); err == nil || !strings.Contains(errOut, "<subcommand>") {
			t.Errorf("%s alone: %v %q", g, err, errOut)
		}
		if err, _, errOut := runCLI(nil, g, "frobnicate"); err == nil || !strings.Contains(errOut, "unknown subcommand") {
			t.Errorf("%s frobnicate: %v %q", g, err, errOut)
		}
	}
	if err, out, _ := runCLI(nil, "-h"); err != nil || !strings.Contains(out, "audit") {
		t.Errorf("voicegate -h: %v\n%s", err, out)
	}
}

// seedStore writes, straight into a SQLite store, three sessions of alice
// and bob a second apart (one live since 30 s, one ended), their ledger and
// audit entries and two app keys.
func seedStore(t *testing.T, path string, now time.Time) (ids []string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := now.Add(-time.Hour).Truncate(time.Second)
	for i, s := range []struct{ user, state string }{{"alice", store.StateEnded}, {"bob", store.StateMinted}, {"alice", store.StateLive}} {
		id := fmt.Sprintf("vgs_seed%d", i)
		ids = append(ids, id)
		sess := &store.Session{ID: id, TokenHash: fmt.Sprintf("%064d", i), TokenID: fmt.Sprintf("tok_%d", i), User: s.user, Tier: "default",
			Model: "gpt-realtime", Limits: store.Limits{MaxSessionSeconds: 300, BudgetNanoUSD: 500_000_000, MaxConcurrent: 2},
			CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(time.Hour), State: s.state, Transport: "websocket"}
		if s.state == store.StateLive {
			sess.StartedAt = now.Add(-30 * time.Second)
			if err := st.AppendAudit(ctx, store.AuditEntry{At: now.Add(-30 * time.Second), Kind: "connect", SessionID: id, User: s.user}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendAudit(ctx, store.AuditEntry{At: sess.CreatedAt, Kind: "mint", SessionID: id, User: s.user, Tier: "default",
			Detail: map[string]any{"model": "gpt-realtime"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordUsage(ctx, store.LedgerEntry{SessionID: id, ResponseID: "resp_" + id, User: s.user, Tier: "default", Model: "gpt-realtime",
			Status: "completed", Usage: store.Usage{TotalTokens: 100, InputTokens: 60, OutputTokens: 40}, CostNanoUSD: 1_000_000,
			At: base.Add(-time.Duration(i) * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestStoreCommandsPrintTablesAndJSON: sessions list/show, usage, keys list
// and audit print a table by default and JSON with --json, newest first,
// paged, with RFC 3339 times; unknown filters are refused.
func TestStoreCommandsPrintTablesAndJSON(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vg.db")
	now := time.Now()
	ids := seedStore(t, db, now)
	env := map[string]string{"VOICEGATE_STORE": "sqlite:" + db}
	rfc3339 := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

	// sessions list: table, newest first.
	out := cli(t, env, "sessions", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], ids[2]) || !strings.HasPrefix(lines[3], ids[0]) ||
		!rfc3339.MatchString(lines[1]) {
		t.Fatalf("sessions list:\n%s", out)
	}
	// --json, a page of 2, then the next page by --before.
	var page []struct {
		ID          string    `json:"id"`
		CreatedAt   time.Time `json:"created_at"`
		LiveSeconds float64   `json:"live_seconds"`
		State       string    `json:"state"`
	}
	if err := json.Unmarshal([]byte(cli(t, env, "sessions", "list", "--json", "--limit", "2")), &page); err != nil || len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[1] {
		t.Fatalf("page 1: %v %+v", err, page)
	}
	if page[0].LiveSeconds < 30 || page[0].LiveSeconds > 300 {
		t.Errorf("live_seconds of a session live for 30 s = %v", page[0].LiveSeconds)
	}
	next := cli(t, env, "sessions", "list", "--json", "--limit", "2", "--before", page[1].CreatedAt.Format(time.RFC3339Nano))
	if err := json.Unmarshal([]byte(next), &page); err != nil || len(page) != 1 || page[0].ID != ids[0] {
		t.Fatalf("page 2: %v %s", err, next)
	}
	if out := cli(t, env, "sessions", "list", "--state", "live", "--user", "alice"); !strings.Contains(out, ids[2]) || strings.Contains(out, ids[0]) {
		t.Errorf("filtered list:\n%s", out)
	}

	// sessions show: a table of fields, limits readable; JSON the view.
	show := cli(t, env, "sessions", "show", ids[2])
	for _, want := range []string{"state                 live", "max_session_seconds   300", "budget                $0.500000", "cost                  $0.001000", "total_tokens          100"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "map[") {
		t.Errorf("show prints a Go map:\n%s", show)
	}
	var view map[string]any
	if err := json.Unmarshal([]byte(cli(t, env, "sessions", "show", ids[2], "--json")), &view); err != nil || view["id"] != ids[2] || view["live_seconds"].(float64) < 30 {
		t.Errorf("show --json: %v %v", err, view)
	}

	// usage --group-by day: newest day first.
	usage := cli(t, env, "usage", "--group-by", "day")
	ul := strings.Split(strings.TrimSpace(usage), "\n")
	days := []string{}
	for _, l := range ul[1:] {
		days = append(days, strings.Fields(l)[0])
	}
	if len(days) != 3 || !(days[0] > days[1] && days[1] > days[2]) || !strings.HasPrefix(ul[0], "DAY ") {
		t.Errorf("usage by day:\n%s", usage)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(cli(t, env, "usage", "--group-by", "user", "--json")), &rows); err != nil || len(rows) != 2 || rows[0]["key"] != "alice" {
		t.Errorf("usage --json: %v %v", err, rows)
	}

	// keys: create two, newest first.
	cli(t, env, "keys", "create", "--name", "first")
	var k struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(cli(t, env, "keys", "create", "--name", "second", "--json")), &k); err != nil || k.CreatedAt.IsZero() {
		t.Fatalf("keys create --json: %v %+v", err, k)
	}
	kl := strings.Split(strings.TrimSpace(cli(t, env, "keys", "list")), "\n")
	if len(kl) != 3 || !strings.Contains(kl[1], "second") || !strings.Contains(kl[2], "first") || !rfc3339.MatchString(kl[1]) {
		t.Errorf("keys list:\n%s", strings.Join(kl, "\n"))
	}
	var keys []map[string]any
	if err := json.Unmarshal([]byte(cli(t, env, "keys", "list", "--json", "--limit", "1")), &keys); err != nil || len(keys) != 1 || keys[0]["name"] != "second" {
		t.Errorf("keys list --json --limit 1: %v %v", err, keys)
	}

	// audit: newest first, paged by SEQ, filters.
	al := strings.Split(strings.TrimSpace(cli(t, env, "audit")), "\n")
	if len(al) != 7 || !strings.HasPrefix(al[0], "SEQ ") || !strings.Contains(al[1], "key_create") || !strings.Contains(al[len(al)-1], ids[0]) {
		t.Errorf("audit:\n%s", strings.Join(al, "\n"))
	}
	var entries []store.AuditEntry
	if err := json.Unmarshal([]byte(cli(t, env, "audit", "--kind", "mint", "--json", "--limit", "2")), &entries); err != nil || len(entries) != 2 ||
		entries[0].SessionID != ids[2] || entries[0].Seq < entries[1].Seq {
		t.Fatalf("audit --json: %v %+v", err, entries)
	}
	if err := json.Unmarshal([]byte(cli(t, env, "audit", "--kind", "mint", "--json", "--before", fmt.Sprint(entries[1].Seq))), &entries); err != nil ||
		len(entries) != 1 || entries[0].SessionID != ids[0] {
		t.Errorf("audit next page: %v %+v", err, entries)
	}
	if out := cli(t, env, "audit", "--session", ids[2]); strings.Count(out, ids[2]) != 2 {
		t.Errorf("audit --session:\n%s", out)
	}

	// Unknown filters and bad values are refused, with a non-zero exit.
	for _, args := range [][]string{
		{"sessions", "list", "--usr", "alice"},
		{"sessions", "list", "--state", "sleeping"},
		{"sessions", "list", "--limit", "0"},
		{"usage", "--group-by", "color"},
		{"usage", "--since", "yesterday"},
		{"audit", "--type", "mint"},
		{"audit", "extra"},
		{"keys", "list", "--before", "soon"},
	} {
		if err, _, _ := runCLI(env, args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestDevKeepsItsAdminKeyAndServesTLS: dev with --tls serves HTTPS with a
// self-signed certificate kept beside its store and prints how to trust it;
// its admin key is kept there too (0600) and is the same after a restart;
// the CLI reads dev's store by default.
func TestDevKeepsItsAdminKeyAndServesTLS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "voicegate.db")
	args := []string{"dev", "--tls", "--addr", "127.0.0.1:0", "--store", "sqlite:" + db}
	p := start(t, nil, args...)
	out := p.stdout.String()
	certFile := filepath.Join(dir, devCertFile)
	if !strings.HasPrefix(p.base, "https://127.0.0.1:") || !strings.Contains(out, "NODE_EXTRA_CA_CERTS="+certFile) ||
		!strings.Contains(out, "export VOICEGATE_STORE=sqlite:"+db) {
		t.Fatalf("dev printed:\n%s", out)
	}
	line, _, _ := strings.Cut(out, "\n")
	admin := strings.TrimSpace(line[strings.Index(line, "admin key: ")+len("admin key: "):])
	kept, err := os.ReadFile(filepath.Join(dir, devAdminKeyFile))
	if err != nil || strings.TrimSpace(string(kept)) != admin {
		t.Fatalf("kept admin key %q, printed %q: %v", kept, admin, err)
	}
	for _, f := range []string{devAdminKeyFile, devKeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	mintOver := func(base string) int {
		req, _ := http.NewRequest("POST", base+"/v1/realtime/client_secrets", strings.NewReader(`{"user":"dev"}`))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("mint over https with the printed certificate: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := mintOver(p.base); code != 200 {
		t.Fatalf("mint: %d", code)
	}
	p.stop()

	// Restart: same key, same certificate, and the CLI finds the store.
	p = start(t, nil, args...)
	if !strings.Contains(p.stdout.String(), "admin key: "+admin+"\n") {
		t.Fatalf("admin key changed:\n%s", p.stdout.String())
	}
	if pem2, _ := os.ReadFile(certFile); !bytes.Equal(pem, pem2) {
		t.Error("certificate regenerated on restart")
	}
	if code := mintOver(p.base); code != 200 {
		t.Fatalf("mint after restart: %d", code)
	}
	t.Chdir(dir) // the CLI's default store is dev's: sqlite:voicegate.db here
	if out := cli(t, nil, "sessions", "list", "--user", "dev"); strings.Count(out, "vgs_") != 2 {
		t.Errorf("sessions list in dev's directory:\n%s", out)
	}
}
