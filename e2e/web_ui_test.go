package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/testenv"
)

// devProc is a running `voicegate dev`: its URL and admin key as it
// printed them.
type devProc struct {
	base, adminKey string
	stderr         *lockedBuffer
}

var devBanner = regexp.MustCompile(`voicegate dev: (\S+)\s+admin key: (\S+)`)

// startDev runs the built binary's dev command on a free loopback port
// with a store (and so an admin key file) in a temporary directory, and
// waits for its announcement.
func startDev(t *testing.T, dir string) *devProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "dev", "--addr", "127.0.0.1:0", "--store", "sqlite:"+filepath.Join(dir, "vg.db"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VOICEGATE_ADMIN_KEY=") // dev's own key, kept beside the store
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &devProc{stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	banner := make(chan []string, 1)
	go func() { // owner: this test; ends when the process closes stdout
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := devBanner.FindStringSubmatch(sc.Text()); m != nil {
				banner <- m
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cancel()
			<-exited
		}
		cancel()
	})
	select {
	case m := <-banner:
		p.base, p.adminKey = m[1], m[2]
	case <-exited:
		t.Fatalf("voicegate dev exited: %s", p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("voicegate dev did not announce itself: %s", p.stderr.String())
	}
	return p
}

// screenshotDir is $VOICEGATE_SCREENSHOTS when set (kept after the test),
// else a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("VOICEGATE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return t.TempDir()
}

// TestWebPages: voicegate's own pages in headless Chromium against
// `voicegate dev`, with a fake microphone saying "hello, what time is it"
// (espeak-ng) then staying silent. On / a signed-in name talks over
// WebSocket and then WebRTC: each spoken turn completes and the page shows
// both sides of the transcript and a non-zero cost. On /admin/ the WebRTC
// session is listed live; its Revoke session button ends it, and the demo
// page then says so in a sentence; the audit trail filters by kind and
// pages newest first. Both pages are photographed at desktop and phone
// width.
func TestWebPages(t *testing.T) {
	chromium := testenv.Chromium(t)
	dir := t.TempDir()
	wav := testenv.SpokenWAV(t, dir, "hello, what time is it", 300, 8000)
	dev := startDev(t, dir)
	shots := screenshotDir(t)

	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Who   string `json:"who"`
		Turns map[string]struct {
			SessionID   string   `json:"sessionId"`
			User        []string `json:"user"`
			Assistant   []string `json:"assistant"`
			Cost        string   `json:"cost"`
			CostNanoUSD int64    `json:"costNanoUSD"`
			Budget      string   `json:"budget"`
			Time        string   `json:"time"`
			State       string   `json:"state"`
			Notice      string   `json:"notice"`
		} `json:"turns"`
		AdminRow      []string `json:"adminRow"`
		AdminStatus   string   `json:"adminStatus"`
		RevokedNotice string   `json:"revokedNotice"`
		RevokedState  string   `json:"revokedState"`
		Screenshots   []string `json:"screenshots"`
		Audit         struct {
			Page1 []int64 `json:"page1"`
			Page2 []int64 `json:"page2"`
		} `json:"audit"`
	}
	out, stderr := runNodeScript(t, "browser_ui.mjs", 110*time.Second, []string{
		"VG_BASE=" + dev.base, "ADMIN_KEY=" + dev.adminKey, "WAV_FILE=" + wav, "SHOTS=" + shots, "CHROMIUM=" + chromium,
	})
	if err := json.Unmarshal(out, &res); err != nil || !res.OK {
		t.Fatalf("browser run: %v %s\n%s\nbrowser log:\n%s\ngateway stderr:\n%s", err, res.Error, out, stderr, dev.stderr.String())
	}
	if res.Who != "alice" {
		t.Errorf("signed in as %q, want alice", res.Who)
	}
	for _, tr := range []string{"websocket", "webrtc"} {
		got, ok := res.Turns[tr]
		switch {
		case !ok:
			t.Errorf("%s: no turn", tr)
		case got.CostNanoUSD <= 0 || got.Cost == "$0.0000":
			t.Errorf("%s: cost %q (%d nano-dollars), want non-zero", tr, got.Cost, got.CostNanoUSD)
		case len(got.User) == 0 || len(got.Assistant) == 0 || got.Assistant[0] == "":
			t.Errorf("%s: transcript user %q assistant %q", tr, got.User, got.Assistant)
		case !strings.Contains(got.State, tr):
			t.Errorf("%s: the page shows state %q", tr, got.State)
		case !strings.Contains(got.Budget, "of $0.5"):
			t.Errorf("%s: remaining budget %q, want … of $0.5000", tr, got.Budget)
		case !strings.Contains(got.Time, "of 30:00"):
			t.Errorf("%s: remaining time %q, want … of 30:00", tr, got.Time)
		case got.Notice != "":
			t.Errorf("%s: the page shows a notice during a normal turn: %q", tr, got.Notice)
		}
		t.Logf("%s: session %s, transcript %q / %q, cost %s, remaining %s and %s", tr, got.SessionID, got.User, got.Assistant, got.Cost, got.Budget, got.Time)
	}
	if ws, rtc := res.Turns["websocket"].SessionID, res.Turns["webrtc"].SessionID; ws == rtc {
		t.Errorf("both transports showed session %s; each conversation mints its own", ws)
	}
	if row := strings.Join(res.AdminRow, " | "); !strings.Contains(row, "alice") || !strings.Contains(row, "webrtc") || !strings.Contains(row, "gpt-realtime") {
		t.Errorf("the console's live row: %q", row)
	}
	if !strings.Contains(res.AdminStatus, "Revoked session "+res.Turns["webrtc"].SessionID) {
		t.Errorf("the console said %q after the click", res.AdminStatus)
	}
	if !strings.Contains(res.RevokedState, "revoked") {
		t.Errorf("after the revocation the demo page shows state %q", res.RevokedState)
	}
	t.Logf("demo page after the revocation: %q", res.RevokedNotice)
	if p1, p2 := res.Audit.Page1, res.Audit.Page2; len(p1) != 5 || len(p2) == 0 || p2[0] >= p1[len(p1)-1] {
		t.Errorf("audit pages of five, newest first: %v then %v", p1, p2)
	}
	for _, p := range res.Screenshots {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", p, err)
		}
		t.Logf("screenshot: %s", p)
	}
	if len(res.Screenshots) != 4 {
		t.Errorf("%d screenshots, want 4", len(res.Screenshots))
	}
}

// runNodeScript runs `node script` in the e2e directory within timeout
// and returns the last line of its stdout and its stderr.
func runNodeScript(t *testing.T, script string, timeout time.Duration, env []string) ([]byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = testenv.RequireNodeDir(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s", script, err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return []byte(lines[len(lines)-1]), stderr.String()
}
