package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
)

func (e *env) dial(tok string, opts func(*websocket.DialOptions)) (*websocket.Conn, *http.Response, error) {
	o := &websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tok}}
	if opts != nil {
		opts(o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, e.wsURL()+"?model=gpt-realtime", o)
}

func mintToken(e *env, body any) (tok, id string) {
	out := e.mint(body)
	return out["value"].(string), out["voicegate"].(map[string]any)["session_id"].(string)
}

// liveSession mints a token for user, connects with it, waits for the
// relay to take the session and reads its first frame (session.created).
// It returns a 5 s context that ends with the test, the connection, the
// token and the session id.
func (e *env) liveSession(user string) (ctx context.Context, c *websocket.Conn, tok, id string) {
	e.t.Helper()
	tok, id = mintToken(e, map[string]any{"user": user})
	c, _, err := e.dial(tok, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	<-e.relay.got
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.t.Cleanup(cancel)
	if _, _, err := c.Read(ctx); err != nil { // session.created
		e.t.Fatal(err)
	}
	return ctx, c, tok, id
}

func TestRealtimeAdmitAndLease(t *testing.T) {
	e := newEnv(t, nil)
	tok, id := mintToken(e, map[string]any{"user": "alice"})

	c, _, err := e.dial(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := <-e.relay.got
	if s.ID != id || c.Subprotocol() != "realtime" {
		t.Fatalf("relayed %s, subprotocol %q", s.ID, c.Subprotocol())
	}
	e.relay.mu.Lock()
	q, sid := e.relay.query, e.relay.sid
	e.relay.mu.Unlock()
	if q.Get("model") != "gpt-realtime" || sid == "" || strings.Contains(sid, "alice") {
		t.Errorf("query %v safety id %q", q, sid)
	}

	// One live connection per token.
	_, resp, err := e.dial(tok, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("second connection: %v %v", resp, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	// The lease is released when the first connection ends.
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, _ := e.st.LeaseCount(context.Background(), "tok:"+id)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c2, _, err := e.dial(tok, func(o *websocket.DialOptions) {
		o.Subprotocols = []string{"realtime"}
		o.HTTPHeader = http.Header{"Authorization": {"Bearer " + tok}}
	})
	if err != nil {
		t.Fatalf("reconnect with bearer: %v", err)
	}
	<-e.relay.got
	c2.Close(websocket.StatusNormalClosure, "")
}

func TestRealtimeRefusals(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example"} })
	ctx := context.Background()
	tok, id := mintToken(e, map[string]any{"user": "bob"})
	revTok, revID := mintToken(e, map[string]any{"user": "bob"})
	if _, err := RevokeSession(ctx, e.st, revID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	shortTok, _ := mintToken(e, map[string]any{"expires_after": map[string]any{"seconds": 10}})
	userTok, _ := mintToken(e, map[string]any{"user": "mallory"})
	if err := e.st.RevokeUser(ctx, "mallory", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	garbled := tok[:len(tok)-2] + "zz"

	tests := []struct {
		name   string
		tok    string
		opts   func(*websocket.DialOptions)
		status int
		reason string
	}{
		{"bad origin", tok, func(o *websocket.DialOptions) { o.HTTPHeader = http.Header{"Origin": {"https://evil.example"}} }, 403, "origin"},
		{"no token", "", func(o *websocket.DialOptions) { o.Subprotocols = []string{"realtime"} }, 401, "missing"},
		{"garbled", garbled, nil, 401, "malformed"},
		{"openai key", "sk-proj-123", nil, 401, "malformed"},
		{"revoked", revTok, nil, 403, "revoked"},
		{"user revoked", userTok, nil, 403, "revoked"},
		{"expired", shortTok, nil, 401, "expired"},
		{"wrong model", tok, func(o *websocket.DialOptions) {}, 400, ""},
	}
	e.clock.Add(11 * time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := e.wsURL() + "?model=gpt-realtime"
			if tt.name == "wrong model" {
				url = e.wsURL() + "?model=gpt-realtime-mini"
			}
			o := &websocket.DialOptions{Subprotocols: []string{"realtime", "openai-insecure-api-key." + tt.tok}}
			if tt.opts != nil {
				tt.opts(o)
			}
			_, resp, err := websocket.Dial(ctx, url, o)
			if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("got %v %v, want %d", resp, err, tt.status)
			}
		})
	}
	refused, _ := e.st.AuditEntries(ctx, store.AuditFilter{Kind: "auth_refused"})
	reasons := map[any]int{}
	for _, a := range refused {
		reasons[a.Detail["reason"]]++
		if tid, ok := a.Detail["token_id"].(string); ok && (strings.Contains(tok, tid[4:]) || strings.Contains(garbled, tid[4:])) {
			t.Errorf("token id derived from token: %v", tid)
		}
	}
	if reasons["origin"] != 1 || reasons["missing"] != 1 || reasons["malformed"] != 2 || reasons["revoked"] != 2 || reasons["expired"] != 1 {
		t.Errorf("reasons %v", reasons)
	}
	for _, secret := range []string{tok, garbled, revTok, userTok, shortTok} {
		if strings.Contains(e.Logs(), secret) {
			t.Errorf("token leaked into logs")
		}
	}
	s, _ := e.st.Session(ctx, id)
	if s.State != store.StateMinted {
		t.Errorf("refusals changed state: %s", s.State)
	}
}

func TestRevokeClosesLiveSession(t *testing.T) {
	e := newEnv(t, nil)
	ctx, c, tok, id := e.liveSession("dave")
	start := time.Now()
	code, out := e.do("DELETE", "/voicegate/v1/sessions/"+id, testAdmin, nil)
	if code != 200 || out["state"] != store.StateRevoked {
		t.Fatalf("revoke: %d %v", code, out)
	}
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), "session_revoked") {
		t.Fatalf("error event: %s %v", data, err)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("closed after %v", d)
	}
	if _, resp, err := e.dial(tok, nil); err == nil || resp.StatusCode != 403 {
		t.Fatalf("revoked token reconnected: %v", err)
	}
	audit, _ := e.st.AuditEntries(ctx, store.AuditFilter{Kind: "revoke", SessionID: id})
	if len(audit) != 1 {
		t.Fatalf("revoke audit %v", audit)
	}
}

func TestRevocationBusReachesOtherInstances(t *testing.T) {
	e := newEnv(t, nil)
	ctx, c, _, _ := e.liveSession("erin")
	// Another instance revokes the user: only the bus reaches this one.
	if err := e.st.PublishRevocation(ctx, store.Revocation{Kind: "user", ID: "erin", At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	c.Read(ctx)
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
}
