package server

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

// TestRevokeUserNamespacedByAppKey: users are namespaced by app key. An
// app key revoking "carol" ends its own carol's sessions only — live and
// reconnecting — never another app's carol nor the gateway's own; the admin
// targets one app's carol with ?app_key=, and the bare name across apps.
func TestRevokeUserNamespacedByAppKey(t *testing.T) {
	e := newGovEnv(t, govTier(), 15*time.Second)
	ctx := context.Background()
	keyA, recA, _ := auth.CreateKey(ctx, e.st, rand.Reader, time.Now(), "a", nil)
	keyB, recB, _ := auth.CreateKey(ctx, e.st, rand.Reader, time.Now(), "b", nil)
	mint := func(bearer string) string {
		t.Helper()
		code, out := e.do("POST", "/v1/realtime/client_secrets", bearer, `{"user":"carol"}`)
		if code != 200 {
			t.Fatalf("mint: %d %v", code, out)
		}
		return out["value"].(string)
	}
	revoke := func(bearer, query string, wantCode int) map[string]any {
		t.Helper()
		code, out := e.do("POST", "/voicegate/v1/users/carol/revoke"+query, bearer, nil)
		if code != wantCode {
			t.Fatalf("revoke%s: %d %v, want %d", query, code, out, wantCode)
		}
		return out
	}
	// live connects each token, idle ones are minted but kept for a
	// reconnect after the revocations.
	liveA, liveB, liveG := dialLive(t, e, mint(keyA.Reveal())), dialLive(t, e, mint(keyB.Reveal())), dialLive(t, e, mint(testAdmin))
	idleA, idleB, idleG := mint(keyA.Reveal()), mint(keyB.Reveal()), mint(testAdmin)

	// Refused before anything is revoked.
	revoke(keyB.Reveal(), "?app_key="+recA.ID, http.StatusForbidden)
	revoke(testAdmin, "?app_key=key_nope", http.StatusNotFound)
	revoke(testAdmin, "?app_key=", http.StatusBadRequest)
	revoke(testAdmin, "?app=x", http.StatusBadRequest)
	stillLive(t, liveA)

	// App A revokes its carol: A's session closes, B's and the gateway's
	// stay, and only A's reconnect is refused.
	if out := revoke(keyA.Reveal(), "", http.StatusOK); out["app_key_id"] != recA.ID || out["user"] != "carol" {
		t.Errorf("app key A's revocation = %v", out)
	}
	closedRevoked(t, liveA)
	stillLive(t, liveB)
	stillLive(t, liveG)
	checkReconnect(t, e, idleA, true)
	checkReconnect(t, e, idleB, false)
	checkReconnect(t, e, idleG, false)
	assertRevokeAudit(t, e, recA.ID)

	// A session app A mints for carol afterwards works: a revocation covers
	// the sessions created until it.
	checkReconnect(t, e, mint(keyA.Reveal()), false)

	// The admin targets app B's carol only.
	if out := revoke(testAdmin, "?app_key="+recB.ID, http.StatusOK); out["app_key_id"] != recB.ID {
		t.Errorf("admin's revocation in B = %v", out)
	}
	closedRevoked(t, liveB)
	stillLive(t, liveG)
	checkReconnect(t, e, idleB, true)
	checkReconnect(t, e, idleG, false)

	// The bare name, by the admin, covers every app and the gateway's own.
	laterA := mint(keyA.Reveal())
	if out := revoke(testAdmin, "", http.StatusOK); out["app_key_id"] != nil {
		t.Errorf("admin's bare revocation = %v", out)
	}
	closedRevoked(t, liveG)
	checkReconnect(t, e, idleG, true)
	checkReconnect(t, e, laterA, true)
}

// TestUserRevocationTargets: the revocations covering a session are its
// bare user, plus its app's namespaced user when an app key minted it.
func TestUserRevocationTargets(t *testing.T) {
	for _, tt := range []struct {
		sess store.Session
		want string
	}{
		{store.Session{User: "carol"}, "[carol]"},
		{store.Session{User: "carol", AppKeyID: "key_a"}, "[carol key_a/carol]"},
	} {
		if got := userRevocationTargets(&tt.sess); "["+strings.Join(got, " ")+"]" != tt.want {
			t.Errorf("userRevocationTargets(%+v) = %v, want %s", tt.sess, got, tt.want)
		}
	}
}

// closedRevoked reads c until it closes and checks it closed with 1008
// after a session_revoked event.
func closedRevoked(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var sawRevoked bool
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !sawRevoked {
				t.Errorf("close %v, session_revoked seen %v", err, sawRevoked)
			}
			return
		}
		sawRevoked = sawRevoked || strings.Contains(string(b), "session_revoked")
	}
}

// stillLive checks c still relays: an input_audio_buffer.clear comes back
// cleared. Revocations close on this instance before the revoke request
// answers, so a session still relaying afterwards was not covered.
func stillLive(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"input_audio_buffer.clear"}`)); err != nil {
		t.Fatalf("write: %v", err)
	}
	readUntil(t, ctx, c, "input_audio_buffer.cleared")
}

// checkReconnect dials with tok and checks it is refused as revoked (403)
// when want, or admitted (and then closed) otherwise.
func checkReconnect(t *testing.T, e *env, tok string, want bool) {
	t.Helper()
	c, resp, err := e.dial(tok, nil)
	if !want {
		if err != nil {
			t.Errorf("dial: %v (%v), want admitted", err, resp)
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		return
	}
	if err == nil {
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial after revoke: %v (%v), want 403", err, resp)
	}
}

// assertRevokeAudit checks the app key's revocation is audited in its
// namespace, visible to that app key.
func assertRevokeAudit(t *testing.T, e *env, appKeyID string) {
	t.Helper()
	es, err := e.st.AuditEntries(context.Background(), store.AuditFilter{Kind: "revoke", AppKeyID: appKeyID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].User != "carol" || es[0].Detail["by"] != string(auth.KindAppKey) {
		t.Errorf("revoke audit of %s = %+v", appKeyID, es)
	}
}
