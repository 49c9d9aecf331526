package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func postJSON(t *testing.T, url, key string, body any) (*http.Response, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

func TestHandshakeAuth(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	_, hs := startSim(t, Options{Pace: PaceFast, Now: clock})
	url := wsURL(hs, "?model=gpt-realtime")

	t.Run("bearer", func(t *testing.T) {
		c, _, err := dial(t, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ev := c.next(); ev["type"] != "session.created" {
			t.Fatalf("first event %v", ev["type"])
		}
	})
	t.Run("subprotocol", func(t *testing.T) {
		c, resp, err := dial(t, url, http.Header{}, "realtime", "openai-insecure-api-key."+testKey, "openai-agents-sdk.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "realtime" {
			t.Errorf("subprotocol = %q, want realtime", got)
		}
		if ev := c.next(); ev["type"] != "session.created" {
			t.Fatalf("first event %v", ev["type"])
		}
	})
	t.Run("bad key", func(t *testing.T) {
		bad := "sk-wrong-key-abcdefghijklmnop"
		_, resp, err := dial(t, url, http.Header{"Authorization": {"Bearer " + bad}})
		if err == nil {
			t.Fatal("dial succeeded with a bad key")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("resp = %v, want 401", resp)
		}
		body, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(body), bad) {
			t.Errorf("body echoes the key: %s", body)
		}
		var env struct {
			Error struct{ Type, Code string }
		}
		if json.Unmarshal(body, &env); env.Error.Code != "invalid_api_key" || env.Error.Type != "invalid_request_error" {
			t.Errorf("envelope = %s", body)
		}
	})
	t.Run("ephemeral", func(t *testing.T) {
		resp, m := postJSON(t, hs.URL+"/v1/realtime/client_secrets", testKey, map[string]any{
			"expires_after": map[string]any{"anchor": "created_at", "seconds": 60},
			"session":       map[string]any{"type": "realtime", "model": "gpt-realtime-mini", "instructions": "be brief"},
		})
		if resp.StatusCode != 200 {
			t.Fatalf("client_secrets = %d %v", resp.StatusCode, m)
		}
		ek := m["value"].(string)
		if !strings.HasPrefix(ek, "ek_") || int64(m["expires_at"].(float64)) != now.Add(60*time.Second).Unix() {
			t.Fatalf("secret = %v", m)
		}
		if sess := m["session"].(map[string]any); sess["model"] != "gpt-realtime-mini" || sess["object"] != "realtime.session" {
			t.Errorf("session = %v", sess)
		}
		c, _, err := dial(t, wsURL(hs, ""), http.Header{}, "realtime", "openai-insecure-api-key."+ek)
		if err != nil {
			t.Fatal(err)
		}
		created := c.next()
		sess := created["session"].(map[string]any)
		if sess["model"] != "gpt-realtime-mini" || sess["instructions"] != "be brief" {
			t.Errorf("bound session not applied: %v", sess)
		}
		// An ek_ key cannot mint or attach as a server key.
		if resp, _ := postJSON(t, hs.URL+"/v1/realtime/client_secrets", ek, nil); resp.StatusCode != 401 {
			t.Errorf("ek_ minting = %d, want 401", resp.StatusCode)
		}
		now = now.Add(61 * time.Second)
		if _, resp, err := dial(t, wsURL(hs, ""), http.Header{"Authorization": {"Bearer " + ek}}); err == nil || resp.StatusCode != 401 {
			t.Errorf("expired ek_ accepted")
		}
		if _, resp, err := dial(t, wsURL(hs, ""), http.Header{"Authorization": {"Bearer ek_unknown0123456789"}}); err == nil || resp.StatusCode != 401 {
			t.Errorf("unknown ek_ accepted")
		}
	})
	t.Run("expires_after range", func(t *testing.T) {
		for _, secs := range []int{9, 7201} {
			resp, m := postJSON(t, hs.URL+"/v1/realtime/client_secrets", testKey, map[string]any{"expires_after": map[string]any{"seconds": secs}})
			if resp.StatusCode != 400 {
				t.Errorf("seconds=%d: %d %v", secs, resp.StatusCode, m)
			}
		}
	})
}

func TestAnyKeyWhenNoneConfigured(t *testing.T) {
	s := New(Options{})
	if _, err := s.Authorize("Bearer whatever"); err != nil {
		t.Errorf("any key refused: %v", err)
	}
	for _, h := range []string{"", "Bearer ", "Basic abc", "Bearer ek_notminted"} {
		if _, err := s.Authorize(h); err == nil {
			t.Errorf("Authorize(%q) accepted", h)
		}
	}
}

func TestBetaSessionsEndpoint(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	resp, m := postJSON(t, hs.URL+"/v1/realtime/sessions", testKey, map[string]any{
		"model": "gpt-4o-realtime-preview", "voice": "verse", "modalities": []string{"text", "audio"},
		"input_audio_format": "g711_ulaw",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %v", resp.StatusCode, m)
	}
	cs := m["client_secret"].(map[string]any)
	if !strings.HasPrefix(cs["value"].(string), "ek_") || m["voice"] != "verse" || m["input_audio_format"] != "g711_ulaw" {
		t.Fatalf("beta session = %v", m)
	}
	c, _, err := dial(t, wsURL(hs, ""), http.Header{"Authorization": {"Bearer " + cs["value"].(string)}})
	if err != nil {
		t.Fatal(err)
	}
	sess := c.next()["session"].(map[string]any)
	in := obj(sess, "audio", "input")
	if sess["model"] != "gpt-4o-realtime-preview" || obj(in, "format")["type"] != "audio/pcmu" {
		t.Errorf("GA view of the beta-bound session = %v", sess)
	}
}

func TestLedgerEndpoints(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"output_modalities": []string{"text"}}})
	done, _ := c.until("response.done")
	resp, err := http.Get(hs.URL + "/_sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	var list []LedgerEntry
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	id := done["response"].(map[string]any)["id"]
	if len(list) != 1 || list[0].ResponseID != id || list[0].Model != "gpt-realtime" || list[0].Status != "completed" || list[0].Usage.TotalTokens == 0 {
		t.Fatalf("ledger = %+v", list)
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/_sim/ledger", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp, _ = http.Get(hs.URL + "/_sim/ledger")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("ledger after delete = %s", body)
	}
}

func TestOptionsLogValueHidesKeys(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "opts", Options{APIKeys: []string{testKey}})
	if strings.Contains(buf.String(), testKey) || !strings.Contains(buf.String(), "api_keys=1") {
		t.Errorf("log = %s", buf.String())
	}
}
