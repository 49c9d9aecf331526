package e2e_test

import (
	"bufio"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/testenv"
	_ "modernc.org/sqlite"
)

// TestGatewayCore drives the real binary with the official SDKs, then checks
// the ledger against the simulator's, the session costs, secret leaks in
// everything the run produced, and that the store holds only hashes.
func TestGatewayCore(t *testing.T) {
	s := startStack(t)
	agentsDump := filepath.Join(s.dir, "agents.jsonl")
	wsDump := filepath.Join(s.dir, "openai_ws.jsonl")

	var turns []turnResult
	t.Run("AgentsRealtimeSessionWebSocket", func(t *testing.T) {
		r := s.runNode(t, "gw_agents.mjs", agentsDump)
		checkTurn(t, r)
		turns = append(turns, r)
	})
	t.Run("OpenAIRealtimeWSOverWSS", func(t *testing.T) {
		r := s.runNode(t, "gw_openai_ws.mjs", wsDump)
		checkTurn(t, r)
		turns = append(turns, r)
	})
	if t.Failed() {
		t.Fatalf("gateway stderr:\n%s", s.stderr.String())
	}

	t.Run("LedgerEqualsSimulator", func(t *testing.T) {
		simLedger := simLedger(t, s)
		gw := gatewayLedger(t, s.dbPath)
		// Responses, plus the input transcriptions of clients that turn
		// transcription on (kind "transcription").
		responses := 0
		for _, e := range simLedger {
			if e.Kind == "" {
				responses++
			}
		}
		if responses != len(turns) || len(gw) != len(simLedger) {
			t.Fatalf("ledger sizes: sim %d (%d responses), gateway %d, turns %d", len(simLedger), responses, len(gw), len(turns))
		}
		simBySession := map[string][]string{}
		for _, e := range simLedger {
			g, ok := gw[e.ResponseID]
			if !ok {
				t.Fatalf("response %s missing from gateway ledger", e.ResponseID)
			}
			if g.Usage != e.Flat() || g.Model != e.Model || g.Status != e.Status || g.Kind != e.Kind {
				t.Errorf("response %s: gateway %+v, simulator %+v", e.ResponseID, g, e)
			}
			simBySession[e.SessionID] = append(simBySession[e.SessionID], e.ResponseID)
		}
		gwBySession := map[string][]string{}
		for id, g := range gw {
			gwBySession[g.SessionID] = append(gwBySession[g.SessionID], id)
		}
		if got, want := sessionSets(gwBySession), sessionSets(simBySession); got != want {
			t.Errorf("session → responses: gateway %s, simulator %s", got, want)
		}
		for _, r := range turns {
			if _, ok := gw[r.ResponseID]; !ok {
				t.Errorf("client saw response %s not in gateway ledger", r.ResponseID)
			}
		}
	})

	t.Run("SessionCostMatchesTable", func(t *testing.T) {
		simLedger := simLedger(t, s)
		gw := gatewayLedger(t, s.dbPath)
		want := map[string]int64{}
		for _, e := range simLedger {
			c, ok := meter.DefaultTable().Cost(e.Model, e.Flat())
			if !ok {
				t.Fatalf("model %q not priced", e.Model)
			}
			want[gw[e.ResponseID].SessionID] += c
		}
		if len(want) != len(turns) {
			t.Fatalf("want one gateway session per turn, got %v", want)
		}
		for id, cost := range want {
			var v struct {
				ID          string `json:"id"`
				CostNanoUSD int64  `json:"cost_nanousd"`
				Responses   int    `json:"responses"`
			}
			s.do(t, http.MethodGet, "/voicegate/v1/sessions/"+id, adminKey, "", http.StatusOK, &v)
			if v.ID != id || v.CostNanoUSD != cost || v.Responses != 1 || cost <= 0 {
				t.Errorf("session %s: %+v, want cost %d", id, v, cost)
			}
		}
	})

	t.Run("NoSecretInOutputs", func(t *testing.T) {
		tokens := append(mintedTokens(t, agentsDump), mintedTokens(t, wsDump)...)
		if len(tokens) != 2 {
			t.Fatalf("minted tokens = %d, want 2", len(tokens))
		}
		secrets := map[string]string{"server key": serverKey, "admin key": adminKey, "app key": s.appKey}
		for i, tok := range tokens {
			secrets[fmt.Sprintf("token %d", i)] = tok
		}
		s.do(t, http.MethodGet, "/metrics", "", "", http.StatusOK, nil)
		s.do(t, http.MethodGet, "/voicegate/v1/audit", adminKey, "", http.StatusOK, nil)
		s.do(t, http.MethodGet, "/voicegate/v1/sessions", adminKey, "", http.StatusOK, nil)
		s.do(t, http.MethodGet, "/voicegate/v1/usage", adminKey, "", http.StatusOK, nil)
		s.do(t, http.MethodGet, "/voicegate/v1/keys", adminKey, "", http.StatusOK, nil)
		corpus := map[string]string{"gateway stdout": s.stdout.String(), "gateway stderr": s.stderr.String()}
		if len(corpus["gateway stderr"])+len(corpus["gateway stdout"]) == 0 {
			t.Fatal("the gateway logged nothing: the capture is broken")
		}
		s.bodiesMu.Lock()
		for i, b := range s.bodies {
			if strings.HasPrefix(b, "/voicegate/v1/keys ") && strings.Contains(b, `"object":"voicegate.app_key"`) && i == 0 {
				continue // the key-creation answer reveals the app key once, by design
			}
			corpus[fmt.Sprintf("body %d (%s)", i, strings.SplitN(b, " ", 2)[0])] = b
		}
		s.bodiesMu.Unlock()
		for _, f := range []string{agentsDump, wsDump} {
			events := receivedEvents(t, f)
			if len(events) < 10 {
				t.Fatalf("%s: only %d events captured", f, len(events))
			}
			corpus[filepath.Base(f)] = strings.Join(events, "\n")
		}
		for where, text := range corpus {
			for name, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("%s leaks the %s", where, name)
				}
			}
		}
	})

	t.Run("StoreHoldsOnlyHashes", func(t *testing.T) {
		tokens := append(mintedTokens(t, agentsDump), mintedTokens(t, wsDump)...)
		secrets := append([]string{serverKey, adminKey, s.appKey}, tokens...)
		dump := dumpSQLite(t, s.dbPath)
		for _, sec := range secrets {
			if strings.Contains(dump, sec) {
				t.Errorf("store holds a secret in clear (%s…)", sec[:6])
			}
			// also the secret without its prefix, in case the store strips it
			if i := strings.LastIndex(sec, "_"); i > 0 && len(sec)-i > 16 && strings.Contains(dump, sec[i+1:]) {
				t.Errorf("store holds the body of a secret (%s…)", sec[:6])
			}
		}
		for _, tok := range tokens {
			sum := sha256.Sum256([]byte(tok))
			if !strings.Contains(dump, hex.EncodeToString(sum[:])) {
				t.Errorf("sha256 of token %s… not found in the store", tok[:8])
			}
		}
	})
}

func checkTurn(t *testing.T, r turnResult) {
	t.Helper()
	if r.Status != "completed" || !r.SawSpeechStarted || r.AudioBytes == 0 || r.Transcript == "" || r.ResponseID == "" {
		t.Fatalf("turn = %+v", r)
	}
	if tt, _ := r.Usage["total_tokens"].(float64); tt <= 0 {
		t.Fatalf("response.done usage = %v", r.Usage)
	}
}

func simLedger(t *testing.T, s *stack) []sim.LedgerEntry {
	t.Helper()
	resp, err := http.Get(s.sim.URL + "/_sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []sim.LedgerEntry
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list
}

// gatewayLedger reads the gateway's ledger table, by response id.
func gatewayLedger(t *testing.T, path string) map[string]store.LedgerEntry {
	t.Helper()
	db := openDB(t, path)
	rows, err := db.Query(`SELECT session_id, response_id, model, status, total_tokens, input_tokens, output_tokens,
		input_text_tokens, input_audio_tokens, input_image_tokens, cached_tokens, cached_text_tokens,
		cached_audio_tokens, cached_image_tokens, output_text_tokens, output_audio_tokens, cost_nanousd,
		kind, audio_seconds FROM ledger`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]store.LedgerEntry{}
	for rows.Next() {
		var e store.LedgerEntry
		u := &e.Usage
		if err := rows.Scan(&e.SessionID, &e.ResponseID, &e.Model, &e.Status, &u.TotalTokens, &u.InputTokens, &u.OutputTokens,
			&u.InputTextTokens, &u.InputAudioTokens, &u.InputImageTokens, &u.CachedTokens, &u.CachedTextTokens,
			&u.CachedAudioTokens, &u.CachedImageTokens, &u.OutputTextTokens, &u.OutputAudioTokens, &e.CostNanoUSD,
			&e.Kind, &u.AudioSeconds); err != nil {
			t.Fatal(err)
		}
		out[e.ResponseID] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dumpSQLite renders every row of every table as text.
func dumpSQLite(t *testing.T, path string) string {
	t.Helper()
	tables, cells := testenv.SQLiteCells(t, path)
	if len(tables) < 3 {
		t.Fatalf("tables = %v", tables)
	}
	var b strings.Builder
	for _, c := range cells {
		fmt.Fprintf(&b, "%s.%s=%s\n", c.Table, c.Column, c.Value)
	}
	return b.String()
}

// mintedTokens returns the ek_vg_ values the Node script was minted.
func mintedTokens(t *testing.T, file string) []string {
	t.Helper()
	var out []string
	for _, line := range dumpLines(t, file) {
		if line.Kind == "mint" {
			var m struct {
				Value string `json:"value"`
			}
			_ = json.Unmarshal(line.Body, &m)
			out = append(out, m.Value)
		}
	}
	return out
}

// receivedEvents returns every server event the Node script received, raw.
func receivedEvents(t *testing.T, file string) []string {
	t.Helper()
	var out []string
	for _, line := range dumpLines(t, file) {
		if line.Kind == "event" {
			out = append(out, string(line.Body))
		}
	}
	return out
}

type dumpLine struct {
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body"`
}

func dumpLines(t *testing.T, file string) []dumpLine {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dumpLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l dumpLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sessionSets renders session → responses groups without the session ids.
func sessionSets(m map[string][]string) string {
	var groups []string
	for _, ids := range m {
		sort.Strings(ids)
		groups = append(groups, strings.Join(ids, ","))
	}
	sort.Strings(groups)
	return strings.Join(groups, " | ")
}
