package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/testenv"
)

// readmeSection returns the README's text from heading to the next "## ".
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	s = s[i+len(heading):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// codeBlocks returns the fenced blocks of lang in text, in order.
func codeBlocks(text, lang string) []string {
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// after returns text from the first occurrence of marker on.
func after(t *testing.T, text, marker string) string {
	t.Helper()
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("README section lacks %q", marker)
	}
	return text[i:]
}

// voicegateArgs turns a README command line ("voicegate usage --group-by
// day  # comment") into run's arguments, with sub replacing placeholders.
func voicegateArgs(line string, sub *strings.Replacer) []string {
	line, _, _ = strings.Cut(line, "#")
	f := strings.Fields(sub.Replace(line))
	return f[1:]
}

// TestReadmeUsingIt runs the README's "Using it" steps as written against
// voicegate dev --tls started in its own directory (only the port differs):
// the CLI creates an app key in dev's store; the curl mint (sent with Go's
// net/http: its URL, headers and body taken from the README); the
// openai-node mint snippet (run by Node); an Agents SDK voice turn over wss
// to the README's URL (the e2e harness gw_agents.mjs); then the operator
// commands of step 3 and the operator API's curl, with non-empty, correct
// output.
func TestReadmeUsingIt(t *testing.T) {
	nodeDir := testenv.RequireNodeDir(t)
	using := readmeSection(t, "## Using it")
	dir := t.TempDir()
	t.Chdir(dir)
	p := start(t, nil, "dev", "--tls", "--addr", "127.0.0.1:0")
	host := strings.TrimPrefix(p.base, "https://")
	certFile := filepath.Join(dir, devCertFile)
	if !strings.Contains(p.stdout.String(), "NODE_EXTRA_CA_CERTS="+certFile) {
		t.Fatalf("dev printed:\n%s", p.stdout.String())
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	shellVars := map[string]string{}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return shellVars[k] })
	}
	atDev := strings.NewReplacer("127.0.0.1:8080", host)

	// Step 1: keys create, then the curl mint.
	step1 := codeBlocks(after(t, using, "### 1."), "sh")[0]
	lines := strings.Split(strings.TrimSpace(step1), "\n")
	if !strings.HasPrefix(lines[0], "voicegate keys create") || !strings.HasPrefix(lines[1], "export VOICEGATE_APP_KEY=") {
		t.Fatalf("step 1 changed:\n%s", step1)
	}
	out := cli(t, nil, voicegateArgs(lines[0], atDev)...)
	appKey := regexp.MustCompile(`vgk_[0-9A-Za-z]+`).FindString(out)
	if appKey == "" {
		t.Fatalf("keys create printed:\n%s", out)
	}
	shellVars["VOICEGATE_APP_KEY"] = appKey
	curl := atDev.Replace(strings.ReplaceAll(strings.Join(lines[2:], "\n"), "\\\n", " "))
	url := regexp.MustCompile(`https://\S+`).FindString(curl)
	body := regexp.MustCompile(`(?s)-d '(.*?)'`).FindStringSubmatch(curl)
	if !strings.Contains(curl, "--cacert "+devCertFile) || url == "" || body == nil {
		t.Fatalf("curl line: %s", curl)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(body[1]))
	for _, h := range regexp.MustCompile(`-H (?:"([^"]*)"|'([^']*)')`).FindAllStringSubmatch(curl, -1) {
		k, v, _ := strings.Cut(expand(h[1]+h[2]), ": ")
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var minted struct {
		Value     string  `json:"value"`
		ExpiresAt float64 `json:"expires_at"`
		Session   struct{ ID, Model, Instructions string }
		Voicegate struct {
			SessionID string `json:"session_id"`
			User      string
			Tier      string
			Limits    map[string]float64
		}
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(data, &minted); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(minted.Value, "ek_vg_") ||
		minted.Voicegate.User != "alice" || minted.Voicegate.Tier != "default" || minted.Session.Instructions != "Be brief." ||
		minted.Voicegate.Limits["max_session_seconds"] != 300 || minted.Voicegate.Limits["budget_usd"] != 0.5 ||
		minted.Voicegate.Limits["max_concurrent"] != 2 || minted.ExpiresAt < float64(time.Now().Unix()) {
		t.Fatalf("curl mint: %d %s (%v)", resp.StatusCode, data, err)
	}
	sessions := []string{minted.Voicegate.SessionID}

	// The openai-node snippet, as written, with the dev certificate trusted.
	js := codeBlocks(after(t, using, "### 1."), "js")[0]
	f, err := os.CreateTemp(nodeDir, ".readme-mint-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	f.WriteString(atDev.Replace(js) + "\nconsole.log(JSON.stringify({ value: secret.value, id: secret.session.id }));\n")
	f.Close()
	nodeEnv := []string{"NODE_EXTRA_CA_CERTS=" + certFile, "VOICEGATE_APP_KEY=" + appKey}
	var nodeMint struct{ Value, ID string }
	testenv.RunNode(t, nodeDir, filepath.Base(f.Name()), nodeEnv, &nodeMint)
	if !strings.HasPrefix(nodeMint.Value, "ek_vg_") || !strings.HasPrefix(nodeMint.ID, "vgs_") {
		t.Fatalf("openai-node mint: %+v", nodeMint)
	}
	sessions = append(sessions, nodeMint.ID)

	// Step 2: an Agents SDK voice turn over wss to the README's URL.
	wsURL := regexp.MustCompile(`url: '(wss://[^']+)'`).FindStringSubmatch(after(t, using, "### 2."))
	if wsURL == nil {
		t.Fatal("step 2 has no wss:// URL")
	}
	var turn struct {
		Status     string
		ResponseID string
		Usage      struct {
			TotalTokens int64 `json:"total_tokens"`
		}
		AudioBytes int
	}
	testenv.RunNode(t, nodeDir, "gw_agents.mjs", append(nodeEnv, "VG_APP_KEY="+appKey, "VG_BASE_URL="+p.base+"/v1",
		"VG_WS_URL="+atDev.Replace(wsURL[1])), &turn)
	if turn.Status != "completed" || turn.Usage.TotalTokens == 0 || turn.AudioBytes == 0 {
		t.Fatalf("agents turn: %+v", turn)
	}

	// Find the agents session: the one with a response.
	var views []struct {
		ID          string
		Responses   int
		CostNanoUSD int64 `json:"cost_nanousd"`
	}
	if err := json.Unmarshal([]byte(cli(t, nil, "sessions", "list", "--json")), &views); err != nil || len(views) != 3 {
		t.Fatalf("sessions list --json: %v %+v", err, views)
	}
	var agentSession string
	for _, v := range views {
		if v.Responses == 1 && v.CostNanoUSD > 0 {
			agentSession = v.ID
		}
	}
	if agentSession == "" {
		t.Fatalf("no session with the agents turn: %+v", views)
	}
	sessions = append(sessions, agentSession)

	// Step 3: the operator commands, as written.
	step3 := after(t, using, "### 3.")
	sub := strings.NewReplacer("vgs_6dd3…", agentSession)
	today := time.Now().UTC().Format(time.DateOnly)
	ran := 0
	for _, line := range strings.Split(codeBlocks(step3, "sh")[0], "\n") {
		if !strings.HasPrefix(line, "voicegate ") {
			continue
		}
		args := voicegateArgs(line, sub)
		out := cli(t, nil, args...)
		ran++
		lines := strings.Split(strings.TrimSpace(out), "\n")
		switch strings.Join(args[:min(2, len(args))], " ") {
		case "sessions list":
			for _, id := range sessions {
				if !strings.Contains(out, id) {
					t.Errorf("sessions list lacks %s:\n%s", id, out)
				}
			}
			if len(lines) != 4 || !strings.HasPrefix(lines[1], agentSession) {
				t.Errorf("sessions list, newest first:\n%s", out)
			}
		case "sessions show":
			for _, want := range []string{"id                    " + agentSession, "responses             1", "transport             websocket"} {
				if !strings.Contains(out, want) {
					t.Errorf("sessions show lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "cost                  $0.000000") {
				t.Errorf("sessions show: no cost\n%s", out)
			}
		case "usage --group-by":
			if len(lines) != 2 || !strings.HasPrefix(lines[1], today+" ") || strings.Fields(lines[1])[1] != "1" {
				t.Errorf("usage --group-by day:\n%s", out)
			}
		case "audit --limit":
			for _, kind := range []string{"key_create", "mint", "connect"} {
				if !strings.Contains(out, " "+kind+" ") {
					t.Errorf("audit lacks %s:\n%s", kind, out)
				}
			}
		default:
			t.Errorf("README step 3 runs %v: the test does not check it", args)
		}
	}
	if ran != 4 {
		t.Errorf("step 3 ran %d commands, want 4", ran)
	}

	// The operator API's curl: the session with its usage and cost.
	admin, err := os.ReadFile(devAdminKeyFile)
	if err != nil || !strings.Contains(step3, "ADMIN=$(cat "+devAdminKeyFile+")") {
		t.Fatalf("admin key file: %v", err)
	}
	get := regexp.MustCompile(`curl --cacert \S+ -H "Authorization: Bearer \$ADMIN" (https://\S+)`).FindStringSubmatch(step3)
	if get == nil {
		t.Fatal("step 3 has no operator GET")
	}
	req, _ = http.NewRequest("GET", sub.Replace(atDev.Replace(get[1])), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var view map[string]any
	json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if resp.StatusCode != 200 || view["id"] != agentSession || view["cost_nanousd"].(float64) <= 0 || view["responses"] != 1.0 {
		t.Errorf("operator GET: %d %v", resp.StatusCode, view)
	}
	if strings.Contains(p.stderr.String(), appKey) || strings.Contains(p.stderr.String(), strings.TrimSpace(string(admin))) {
		t.Error("a secret in dev's logs")
	}
}
