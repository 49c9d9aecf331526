package relay

import (
	"context"
	"github.com/voicegate/voicegate/internal/govern"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// slowSettle is a store whose settlements take a while, as a remote store's
// may under load.
type slowSettle struct {
	store.Store
	delay time.Duration
}

func (s slowSettle) Settle(ctx context.Context, id string, actual int64) error {
	time.Sleep(s.delay)
	return s.Store.Settle(ctx, id, actual)
}

// TestResponseRightAfterDoneWaitsForSettle: a client that sends
// response.create the moment it reads response.done is judged after the
// finished response is settled (the governor settles it before the
// client sees response.done), not against its still-held worst-case
// reservation — even with a slow store. The budget fits one worst case
// plus an actual cost, never two worst cases, so a decision on stale
// figures would refuse the second response with budget_exceeded.
func TestResponseRightAfterDoneWaitsForSettle(t *testing.T) {
	h := newGovHarness(t, testTier())
	slow := slowSettle{Store: h.st, delay: 300 * time.Millisecond}
	h.gov.Store = slow
	h.gov.MinOutputTokens = 1000 // grant the full bound or nothing: no clamping to hide the refusal
	budget := 2*meter.DefaultTable().MaxCost("gpt-realtime", 1000, 0) - 1
	h.session(t, "vgs_s1", "sam", "test", store.Limits{BudgetNanoUSD: budget}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.dial(ctx, t, "vgs_s1")
	t.Cleanup(func() { _ = c.c.CloseNow() }) // a failed test must not leave the relay waiting
	const create = `{"type":"response.create","response":{"max_output_tokens":1000}}`
	c.send(ctx, `{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"Hi"}]}}`)
	c.send(ctx, create)
	c.until(ctx, "response.done")
	c.send(ctx, create) // at once: the first response is still being settled
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for the second response: %v; frames %v", err, tail(c.frames, 3))
		}
		c.frames = append(c.frames, string(b))
		typ, _ := realtime.EventType(b)
		if typ == "error" && strings.Contains(string(b), govern.CodeBudgetExceeded) {
			t.Fatalf("second response refused while the first was settling: %s", b)
		}
		if typ == "response.done" {
			break
		}
	}
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(5 * time.Second); h.relay.LiveCount() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if total := spent(t, h.st, store.LedgerFilter{SessionID: "vgs_s1"}); total > budget {
		t.Errorf("spent %d > budget %d", total, budget)
	}
	if sp, reserved, err := h.st.Spent(ctx, "session:vgs_s1"); err != nil || reserved != 0 || sp == 0 {
		t.Errorf("session account: spent %d reserved %d (%v); want both responses settled", sp, reserved, err)
	}
	assertLedgerEqualsSim(t, h)
}
