package govern

import (
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestInputEstimateCountsResponsesInFlight: a response reserved while
// another of the session is running (an out-of-band response beside it, or
// the next server-VAD turn) may see the running response's whole output as
// input, so its reservation covers that output's bound as input.
func TestInputEstimateCountsResponsesInFlight(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	g := &Governor{Store: st, Tiers: map[string]policy.Tier{"outage": budgetTier(5)}, Metrics: NewMetrics(nil)}
	s := newGovSession(t, g, "vgs_f", "fay")
	day := "user:day:fay:" + time.Now().UTC().Format("2006-01-02")
	reserved := func() int64 {
		t.Helper()
		_, r, err := st.Spent(ctx, day)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if code, _ := s.create(ctx); code != "" { // max_output_tokens 200
		t.Fatalf("first response refused: %s", code)
	}
	first := reserved()
	s.gv.Upstream(ctx, "response.created", []byte(`{"type":"response.created","response":{"id":"resp_running","conversation_id":"conv_1","status":"in_progress"}}`))
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("second response refused: %s", code)
	}
	second := reserved() - first
	// The second estimate adds the first's 200 output tokens (and the few
	// the response.create frame itself adds) to the first's input.
	runningOut := meter.DefaultTable().MaxCost("gpt-realtime", 0, 200)
	if second-first < runningOut {
		t.Errorf("second reservation %d exceeds the first %d by %d; want at least the running response's output as input (%d)",
			second, first, second-first, runningOut)
	}
}
