package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/voicegate/voicegate/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/sim"
)

const adminKey = "vg-admin-cluster-test-key-0123456789abcdef"

var binary string

func TestMain(m *testing.M) { testenv.MainWithVoicegate(m, &binary) }

// simulator starts an in-process fast simulator and returns its /v1 URL,
// its key and the server (for its ledger).
func simulator(t *testing.T) (string, string, *sim.Server) {
	t.Helper()
	key := "sk-sim-cluster-test"
	s := sim.New(sim.Options{APIKeys: []string{key}, Pace: sim.PaceFast})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler()}
	go hs.Serve(ln) // owner: test; exits on Close in cleanup
	t.Cleanup(func() { hs.Close(); s.Close() })
	return "http://" + ln.Addr().String() + "/v1", key, s
}

// instance is one running voicegate serve process.
type instance struct {
	name string
	base string
	cmd  *exec.Cmd
	logs *syncBuf
	done chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startInstance runs the binary as instance name on a loopback port.
func startInstance(t *testing.T, name, redisURL, upstream, simKey string, extra ...string) *instance {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--store", redisURL, "--admin-key", adminKey,
		"--upstream", upstream, "--instance", name, "--spool-dir", filepath.Join(t.TempDir(), "spool"), "--log-format", "text"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+simKey)
	in := &instance{name: name, cmd: cmd, logs: &syncBuf{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = in.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() { // owner: instance; exits when the process closes stdout
		re := regexp.MustCompile(`https?://127\.0\.0\.1:\d+`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			in.logs.Write([]byte(sc.Text() + "\n"))
			if m := re.FindString(sc.Text()); m != "" {
				select {
				case urlc <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(in.done) }() // owner: instance; exits with the process
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-in.done
		}
		if t.Failed() {
			t.Logf("instance %s logs:\n%s", name, in.logs.String())
		}
	})
	select {
	case in.base = <-urlc:
	case <-in.done:
		t.Fatalf("instance %s exited: %s", name, in.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("instance %s printed no URL: %s", name, in.logs.String())
	}
	return in
}

// kill SIGKILLs the instance and waits for it to die.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-in.done
}

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// mint mints a text session for user on in and returns token and session id.
func mint(t *testing.T, in *instance, user string) (tok, id string) {
	t.Helper()
	code, m := do(t, "POST", in.base+"/v1/realtime/client_secrets", `{"user":"`+user+`","session":{"output_modalities":["text"]}}`)
	if code != 200 {
		t.Fatalf("mint on %s: %d %v", in.name, code, m)
	}
	return m["value"].(string), m["voicegate"].(map[string]any)["session_id"].(string)
}

// connect opens a Realtime WebSocket on in and reads session.created.
func connect(t *testing.T, in *instance, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.base, "http")+"/v1/realtime?model=gpt-realtime",
		&websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tok}})
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("connect on %s: %d %v", in.name, code, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(16 << 20)
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), "session.created") {
		t.Fatalf("first event on %s: %s %v", in.name, data, err)
	}
	return c
}

// turn runs one text turn and returns the response id.
func turn(t *testing.T, c *websocket.Conn, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range []string{
		`{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"` + text + `"}]}}`,
		`{"type":"response.create"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("turn read: %v", err)
		}
		var ev struct {
			Type     string `json:"type"`
			Response struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"response"`
		}
		json.Unmarshal(data, &ev)
		if ev.Type == "error" {
			t.Fatalf("error event during turn: %s", data)
		}
		if ev.Type == "response.done" {
			if ev.Response.Status != "completed" {
				t.Fatalf("response status %q: %s", ev.Response.Status, data)
			}
			return ev.Response.ID
		}
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
