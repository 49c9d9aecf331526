package govern

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

func TestTranscriptionModelOfConfig(t *testing.T) {
	tests := []struct {
		session string
		model   string
		set     bool
	}{
		{`{"type":"realtime","audio":{"input":{"transcription":{"model":"gpt-4o-transcribe"}}}}`, "gpt-4o-transcribe", true},
		{`{"type":"transcription","audio":{"input":{"transcription":{"model":"whisper-1","language":"en"}}}}`, "whisper-1", true},
		{`{"audio":{"input":{"transcription":null}}}`, "", true},
		{`{"input_audio_transcription":{"model":"gpt-4o-mini-transcribe"}}`, "gpt-4o-mini-transcribe", true},
		{`{"input_audio_transcription":null}`, "", true},
		{`{"audio":{"input":{"format":{"type":"audio/pcm"}}}}`, "", false},
		{`{"model":"gpt-realtime"}`, "", false},
		{`{"audio":{"input":{"transcription":"bad"}}}`, "", false},
		{`[]`, "", false},
		{``, "", false},
	}
	for _, tc := range tests {
		m, set := transcriptionModel(json.RawMessage(tc.session))
		if m != tc.model || set != tc.set {
			t.Errorf("%s: %q, %v; want %q, %v", tc.session, m, set, tc.model, tc.set)
		}
	}
}

// TestTranscriptionChargeCountsHeldGrants: after a transcription is
// charged, the session is closed once the account's spend plus the
// session's own outstanding response grants reaches the limit, so the
// responses (settling within their grants) cannot take the account over
// by more than the transcription.
func TestTranscriptionChargeCountsHeldGrants(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	tier := testTier()
	g := &Governor{Store: st, Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: NewMetrics(nil)}
	rec := &store.Session{ID: "vgs_held", User: "hal", Tier: tier.Name, Model: "gpt-realtime",
		Limits: store.Limits{BudgetNanoUSD: 1_000_000}, ExpiresAt: time.Now().Add(time.Hour)}
	var closed []string
	v := g.Open(rec, Hooks{End: func(r *Refusal) { closed = append(closed, r.Code) }})
	tr := func(id string, cost int64) {
		v.chargeTranscription(ctx, store.LedgerEntry{SessionID: rec.ID, ResponseID: store.TranscriptionResponseID(id),
			Kind: store.LedgerTranscription, CostNanoUSD: cost})
	}
	tr("item_1", 300_000)
	if len(closed) != 0 {
		t.Fatalf("closed at 300000 of 1000000: %v", closed)
	}
	v.mu.Lock()
	v.byResp["resp_1"] = &reservation{id: "res_1", granted: 500_000}
	v.mu.Unlock()
	tr("item_2", 100_000) // 400000 spent + 500000 held < limit
	if len(closed) != 0 {
		t.Fatalf("closed at 400000 spent + 500000 held: %v", closed)
	}
	tr("item_3", 100_000) // 500000 + 500000 = limit
	if len(closed) != 1 || closed[0] != CodeBudgetExceeded {
		t.Fatalf("closes %v; want budget_exceeded once spend + held grants reach the limit", closed)
	}
	if spent, _, _ := st.Spent(ctx, "session:"+rec.ID); spent != 500_000 {
		t.Errorf("spent %d, want 500000", spent)
	}
	// No budget, nothing to charge: no account is touched.
	free := &store.Session{ID: "vgs_free", Tier: tier.Name, ExpiresAt: time.Now().Add(time.Hour)}
	fv := g.Open(free, Hooks{End: func(r *Refusal) { t.Errorf("unbudgeted session closed: %s", r.Code) }})
	fv.chargeTranscription(ctx, store.LedgerEntry{SessionID: free.ID, CostNanoUSD: 5})
}

func testTier() policy.Tier {
	t := policy.DefaultTier()
	t.Name = "test"
	t.Budget = policy.Budget{}
	t.Rates = policy.Rates{}
	return t
}
