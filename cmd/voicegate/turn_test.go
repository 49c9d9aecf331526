package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func getJSON(t *testing.T, url, bearer string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
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

// TestTurnMeteredThenRevoked runs a text turn through the real relay and
// simulator, checks the operator API shows the response's usage and cost,
// then revokes the live session over the API and expects the 1008 close
// within a second.
func TestTurnMeteredThenRevoked(t *testing.T) {
	env := map[string]string{"VOICEGATE_ADMIN_KEY": adminKey}
	p := start(t, env, "serve", "--addr", "127.0.0.1:0", "--store", "memory", "--upstream", "sim")
	_, m := post(t, p.base+"/v1/realtime/client_secrets", adminKey, `{"user":"tess","session":{"output_modalities":["text"]}}`)
	tok := m["value"].(string)
	id := m["voicegate"].(map[string]any)["session_id"].(string)
	c, first, code := connect(t, p.base, tok)
	if code != 101 {
		t.Fatalf("connect %d", code)
	}
	defer c.CloseNow()
	if !strings.Contains(first, "session.created") {
		t.Fatalf("first %s", first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(s string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello there"}]}}`)
	send(`{"type":"response.create"}`)
	var done struct {
		Response struct {
			Usage struct {
				TotalTokens int64 `json:"total_tokens"`
			} `json:"usage"`
		} `json:"response"`
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if strings.Contains(string(data), `"type":"response.done"`) {
			json.Unmarshal(data, &done)
			break
		}
	}
	if done.Response.Usage.TotalTokens == 0 {
		t.Fatal("no usage in response.done")
	}
	var view map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, view = getJSON(t, p.base+"/voicegate/v1/sessions/"+id, adminKey)
		if view["responses"] == 1.0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	usage, _ := view["usage"].(map[string]any)
	if usage["total_tokens"] != float64(done.Response.Usage.TotalTokens) || view["cost_nanousd"].(float64) <= 0 || view["live"] != true || view["state"] != "live" {
		t.Fatalf("session view %v", view)
	}

	start := time.Now()
	req, _ := http.NewRequest("DELETE", p.base+"/voicegate/v1/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	sawEvent := false
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("close: %v", err)
			}
			break
		}
		if strings.Contains(string(data), "session_revoked") {
			sawEvent = true
		}
	}
	if !sawEvent || time.Since(start) > time.Second {
		t.Fatalf("revocation: event %v after %v", sawEvent, time.Since(start))
	}
	_, u := getJSON(t, p.base+"/voicegate/v1/usage?group_by=model", adminKey)
	rows, _ := u["data"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["key"] != "gpt-realtime" {
		t.Fatalf("usage %v", u)
	}
}
