package relay

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestMissingRecordRecreated: a session whose record the store lost (Redis
// restarted empty) has it created again from the live connection at
// connect, keeps it up to date at disconnect, and logs the loss once.
func TestMissingRecordRecreated(t *testing.T) {
	h := newHarness(t, &fakeUpstream{deltas: 1}, nil)
	restarted := memory.New() // the store after an empty restart
	t.Cleanup(func() { restarted.Close() })
	h.relay.Governor.Store = restarted
	ctx, c := h.open()

	rec, err := restarted.Session(ctx, h.sess.ID)
	if err != nil {
		t.Fatalf("record after connect: %v", err)
	}
	if rec.State != store.StateLive || rec.User != "alice" || rec.StartedAt.IsZero() {
		t.Fatalf("re-created record %+v, want live with the session's fields", rec)
	}
	if byTok, err := restarted.SessionByTokenHash(ctx, h.sess.TokenHash); err != nil || byTok.ID != h.sess.ID {
		t.Fatalf("token index of the re-created record: %v %v", byTok, err)
	}
	c.send(ctx, `{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}`)
	c.send(ctx, `{"type":"response.create"}`)
	c.until(ctx, "response.done")
	c.c.Close(websocket.StatusNormalClosure, "")
	h.waitServed()

	rec, err = restarted.Session(ctx, h.sess.ID)
	if err != nil || rec.State != store.StateIdle || rec.LiveSeconds <= 0 {
		t.Fatalf("record after disconnect: %+v %v; want idle with live seconds", rec, err)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "session record missing"); n != 1 {
		t.Errorf("missing-record log lines = %d, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, "session state update failed") {
		t.Errorf("state update errors logged:\n%s", logs)
	}
}
