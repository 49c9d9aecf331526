package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/testenv"
)

const adminKey = "test-admin-key-0123456789abcdefghijkl"

// syncBuffer is a bytes.Buffer safe for the program and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type program struct {
	base   string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func()
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// start runs the program in-process until stop, returning once it printed
// its URL.
func start(t *testing.T, env map[string]string, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, envFunc(env), strings.NewReader(""), p.stdout, p.stderr) }()
	re := regexp.MustCompile(`(https?://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.stdout.String()); m != nil {
			p.base = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("program exited: %v\nstderr: %s", err, p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no URL printed; stderr: %s", p.stderr.String())
		}
	}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("program returned %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("program did not stop")
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

// cli runs a one-shot command and returns its stdout.
func cli(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, envFunc(env), strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func post(t *testing.T, url, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// connect opens a Realtime WebSocket with tok and reads the first event.
func connect(t *testing.T, base, tok string) (*websocket.Conn, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/realtime?model=gpt-realtime",
		&websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tok}})
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return nil, "", code
	}
	c.SetReadLimit(16 << 20)
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("first event: %v", err)
	}
	return c, string(data), 101
}

func TestServeRefusesWithoutOpenAIKey(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--store", "memory", "--addr", "127.0.0.1:0"}, envFunc(nil), nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("err = %v", err)
	}
	err = run(context.Background(), []string{"serve", "--store", "memory", "--admin-key", "short"}, envFunc(map[string]string{"OPENAI_API_KEY": "sk-x"}), nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "admin_key") {
		t.Fatalf("short admin key: %v", err)
	}
}

// TestServeTokensSurviveRestart mints over HTTP against serve (SQLite, the
// simulator as upstream), restarts the program, and checks a valid token
// still connects while a revoked one does not; the SQLite file holds only
// hashes.
func TestServeTokensSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "vg.db")
	env := map[string]string{"VOICEGATE_STORE": "sqlite:" + db, "VOICEGATE_ADMIN_KEY": adminKey}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--upstream", "sim", "--log-format", "text"}

	p := start(t, env, args...)
	code, m1 := post(t, p.base+"/v1/realtime/client_secrets", adminKey, `{"user":"alice","session":{"instructions":"Pinned."}}`)
	if code != 200 {
		t.Fatalf("mint: %d %v", code, m1)
	}
	_, m2 := post(t, p.base+"/api/voice/session", adminKey, `{"user":"bob"}`)
	keep, gone := m1["value"].(string), m2["sessionToken"].(string)
	goneID := m2["sessionId"].(string)
	p.stop()

	out := cli(t, env, "sessions", "revoke", goneID)
	if !strings.Contains(out, "revoked session "+goneID) {
		t.Fatalf("revoke output %q", out)
	}

	p = start(t, env, args...)
	c, first, code := connect(t, p.base, keep)
	if code != 101 || !strings.Contains(first, `"session.created"`) {
		t.Fatalf("token minted before restart: code %d, first %s\nstderr %s", code, first, p.stderr.String())
	}
	c.Close(websocket.StatusNormalClosure, "")
	if _, _, code := connect(t, p.base, gone); code != 403 {
		t.Fatalf("revoked token: %d", code)
	}
	p.stop()

	for _, secret := range []string{keep, gone, adminKey} {
		if strings.Contains(p.stderr.String(), secret) {
			t.Errorf("secret in logs")
		}
	}
	assertOnlyHashes(t, db, keep, gone)
}

// assertOnlyHashes scans every text column of every table for the secrets.
func assertOnlyHashes(t *testing.T, path string, secrets ...string) {
	t.Helper()
	tables, cells := testenv.SQLiteCells(t, path)
	if len(tables) == 0 {
		t.Fatal("no tables")
	}
	found := 0
	for _, c := range cells {
		for _, sec := range secrets {
			if strings.Contains(c.Value, sec) || strings.Contains(c.Value, sec[6:30]) {
				t.Errorf("table %s holds a secret", c.Table)
			}
			if strings.Contains(c.Value, hashOf(sec)) {
				found++
			}
		}
	}
	if found < len(secrets) {
		t.Errorf("found %d token hashes, want ≥ %d", found, len(secrets))
	}
}

// TestDebugAddrServesProfiles: --debug-addr serves Go's profiles on their
// own listener, and never the command line (flags may carry the admin key).
func TestDebugAddrServesProfiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, nil, "dev", "--store", "memory", "--addr", "127.0.0.1:0", "--admin-key", adminKey, "--debug-addr", addr)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("heap profile: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/cmdline"); code != 404 || strings.Contains(body, adminKey) {
		t.Errorf("cmdline: %d %.200s", code, body)
	}
	if strings.Contains(p.base, addr) {
		t.Errorf("the gateway's URL %s is the debug listener's", p.base)
	}
}
