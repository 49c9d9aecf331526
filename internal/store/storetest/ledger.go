package storetest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

var ledgerTests = []test{
	{"RecordOnce", testLedgerRecordOnce},
	{"ConcurrentDuplicates", testLedgerConcurrentDuplicates},
	{"Filters", testLedgerFilters},
	{"Transcriptions", testLedgerTranscriptions},
}

func newEntry(session, response, user, appKey string, when time.Duration) store.LedgerEntry {
	return store.LedgerEntry{
		SessionID:  session,
		ResponseID: response,
		User:       user,
		AppKeyID:   appKey,
		Tier:       "default",
		Model:      "gpt-realtime",
		Status:     "completed",
		Usage: store.Usage{
			TotalTokens: 1000, InputTokens: 600, OutputTokens: 400,
			InputTextTokens: 100, InputAudioTokens: 450, InputImageTokens: 50,
			CachedTokens: 300, CachedTextTokens: 60, CachedAudioTokens: 230, CachedImageTokens: 10,
			OutputTextTokens: 40, OutputAudioTokens: 360,
		},
		CostNanoUSD: 12_345_678,
		At:          at(when),
	}
}

func entryKey(e store.LedgerEntry) string { return e.SessionID + "/" + e.ResponseID }

func diffEntry(got, want store.LedgerEntry) string {
	ga, wa := got.At, want.At
	got.At, want.At = time.Time{}, time.Time{}
	if got != want || !ga.Equal(wa) {
		got.At, want.At = ga, wa
		return fmt.Sprintf("got %+v\nwant %+v", got, want)
	}
	return ""
}

func testLedgerRecordOnce(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	want := newEntry("vgs_1", "resp_1", "alice", "key_a", 0)
	inserted, err := a.RecordUsage(ctx, want)
	if err != nil || !inserted {
		t.Fatalf("first RecordUsage = %v, %v; want inserted", inserted, err)
	}
	dup := want
	dup.CostNanoUSD = 1
	dup.Status = "cancelled"
	for name, s := range map[string]store.Store{"same handle": a, "other handle": b} {
		inserted, err := s.RecordUsage(ctx, dup)
		if err != nil || inserted {
			t.Errorf("%s: duplicate RecordUsage = %v, %v; want not inserted", name, inserted, err)
		}
	}
	// Same response id in another session is another entry.
	other := newEntry("vgs_2", "resp_1", "alice", "key_a", time.Second)
	if inserted, err := b.RecordUsage(ctx, other); err != nil || !inserted {
		t.Fatalf("RecordUsage(vgs_2/resp_1) = %v, %v; want inserted", inserted, err)
	}
	got, err := b.LedgerEntries(ctx, store.LedgerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("LedgerEntries returned %d entries, want 2", len(got))
	}
	if d := diffEntry(got[0], want); d != "" {
		t.Errorf("entry 0 (the duplicate must not overwrite it): %s", d)
	}
	if d := diffEntry(got[1], other); d != "" {
		t.Errorf("entry 1: %s", d)
	}
}

func testLedgerConcurrentDuplicates(t *testing.T, h *harness) {
	a, b := h.two(t)
	const responses, workers = 15, 4 // workers per handle, each records every response
	var inserted atomic.Int64
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b} {
		for w := range workers {
			wg.Go(func() {
				for i := range responses {
					// Vary the order so workers collide on different entries.
					r := (i + w*3) % responses
					ok, err := s.RecordUsage(t.Context(), newEntry("vgs_1", fmt.Sprintf("resp_%02d", r), "alice", "", time.Duration(r)*time.Millisecond))
					if err != nil {
						t.Errorf("RecordUsage: %v", err)
						return
					}
					if ok {
						inserted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := inserted.Load(); n != responses {
		t.Errorf("%d RecordUsage calls reported inserted, want exactly %d", n, responses)
	}
	got, err := a.LedgerEntries(t.Context(), store.LedgerFilter{SessionID: "vgs_1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != responses {
		t.Errorf("ledger holds %d entries, want %d", len(got), responses)
	}
}

func testLedgerFilters(t *testing.T, h *harness) {
	a, b := h.two(t)
	seed := []store.LedgerEntry{
		newEntry("vgs_1", "resp_a", "alice", "key_a", 0),
		newEntry("vgs_1", "resp_b", "alice", "key_a", 1*time.Second),
		newEntry("vgs_2", "resp_a", "bob", "key_b", 2*time.Second),
		newEntry("vgs_3", "resp_c", "alice", "key_b", 3*time.Second),
		newEntry("vgs_4", "resp_d", "", "", 4*time.Second),
	}
	// Insert out of time order: results come back oldest first regardless.
	for _, i := range []int{3, 0, 4, 2, 1} {
		if ok, err := a.RecordUsage(t.Context(), seed[i]); err != nil || !ok {
			t.Fatalf("RecordUsage(%s) = %v, %v", entryKey(seed[i]), ok, err)
		}
	}
	tests := []struct {
		name string
		f    store.LedgerFilter
		want []int
	}{
		{"all", store.LedgerFilter{}, []int{0, 1, 2, 3, 4}},
		{"session", store.LedgerFilter{SessionID: "vgs_1"}, []int{0, 1}},
		{"user", store.LedgerFilter{User: "alice"}, []int{0, 1, 3}},
		{"app key", store.LedgerFilter{AppKeyID: "key_b"}, []int{2, 3}},
		{"since inclusive", store.LedgerFilter{Since: at(2 * time.Second)}, []int{2, 3, 4}},
		{"until exclusive", store.LedgerFilter{Until: at(2 * time.Second)}, []int{0, 1}},
		{"window", store.LedgerFilter{Since: at(time.Second), Until: at(3 * time.Second)}, []int{1, 2}},
		{"empty window", store.LedgerFilter{Since: at(time.Second), Until: at(time.Second)}, nil},
		{"user and window", store.LedgerFilter{User: "alice", Since: at(time.Second), Until: at(4 * time.Second)}, []int{1, 3}},
		{"user and key", store.LedgerFilter{User: "alice", AppKeyID: "key_b"}, []int{3}},
		{"no match", store.LedgerFilter{SessionID: "vgs_9"}, nil},
	}
	for _, tc := range tests {
		got, err := b.LedgerEntries(t.Context(), tc.f)
		if err != nil {
			t.Fatalf("%s: LedgerEntries: %v", tc.name, err)
		}
		var gotKeys, wantKeys []string
		for _, e := range got {
			gotKeys = append(gotKeys, entryKey(e))
		}
		for _, i := range tc.want {
			wantKeys = append(wantKeys, entryKey(seed[i]))
		}
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("%s: LedgerEntries = %v, want %v", tc.name, gotKeys, wantKeys)
			continue
		}
		for i, e := range got {
			if d := diffEntry(e, seed[tc.want[i]]); d != "" {
				t.Errorf("%s: entry %s: %s", tc.name, entryKey(e), d)
			}
		}
	}
}

// testLedgerTranscriptions: transcription entries keep their kind and
// duration, are recorded once per item, and sit beside a response of the
// same session without colliding.
func testLedgerTranscriptions(t *testing.T, h *harness) {
	a, b := h.two(t)
	ctx := t.Context()
	resp := newEntry("vgs_1", "resp_1", "alice", "key_a", 0)
	tokens := store.LedgerEntry{
		SessionID: "vgs_1", ResponseID: store.TranscriptionResponseID("item_1"), Kind: store.LedgerTranscription,
		User: "alice", AppKeyID: "key_a", Tier: "default", Model: "gpt-4o-transcribe", Status: "completed",
		Usage:       store.Usage{TotalTokens: 22, InputTokens: 13, OutputTokens: 9, InputAudioTokens: 13, OutputTextTokens: 9},
		CostNanoUSD: 168_000, At: at(time.Second),
	}
	duration := store.LedgerEntry{
		SessionID: "vgs_1", ResponseID: store.TranscriptionResponseID("item_2"), Kind: store.LedgerTranscription,
		User: "alice", AppKeyID: "key_a", Tier: "default", Model: "whisper-1", Status: "completed",
		Usage: store.Usage{AudioSeconds: 7}, CostNanoUSD: 700_000, At: at(2 * time.Second),
	}
	for _, e := range []store.LedgerEntry{resp, tokens, duration} {
		if ok, err := a.RecordUsage(ctx, e); err != nil || !ok {
			t.Fatalf("RecordUsage(%s) = %v, %v; want inserted", entryKey(e), ok, err)
		}
	}
	dup := duration
	dup.Usage.AudioSeconds = 99
	if ok, err := b.RecordUsage(ctx, dup); err != nil || ok {
		t.Errorf("duplicate transcription RecordUsage = %v, %v; want not inserted", ok, err)
	}
	for _, f := range []store.LedgerFilter{{SessionID: "vgs_1"}, {User: "alice"}} {
		got, err := b.LedgerEntries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("LedgerEntries(%+v) returned %d entries, want 3", f, len(got))
		}
		for i, want := range []store.LedgerEntry{resp, tokens, duration} {
			if d := diffEntry(got[i], want); d != "" {
				t.Errorf("filter %+v entry %d: %s", f, i, d)
			}
		}
	}
}
