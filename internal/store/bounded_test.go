package store_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/store"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"response.create", 64, "response.create"},
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abc…"},
		{"a\nb\x00c", 64, "a\uFFFDb\uFFFDc"},
		{"é\xffz", 64, "é\uFFFDz"},
		{strings.Repeat("é", 10), 8, "éé…"},
	}
	for _, tt := range tests {
		if got := store.Sanitize(tt.in, tt.n); got != tt.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestAuditEntryBounded(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	many := map[string]any{}
	for i := range 1000 {
		many[strings.Repeat("k", i%50)+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = i
	}
	e := store.AuditEntry{Kind: "refusal", User: huge, Detail: map[string]any{
		"event_type": huge, "list": []string{huge, "ok"}, "many": many,
		"deep": map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": huge}}}},
	}}
	got := e.Bounded()
	if len(got.User) > 2*store.MaxAuditString || !utf8.ValidString(got.User) {
		t.Errorf("User kept %d bytes", len(got.User))
	}
	if s := got.Detail["event_type"].(string); len(s) > store.MaxAuditString {
		t.Errorf("event_type kept %d bytes", len(s))
	}
	if l := got.Detail["list"].([]string); len(l[0]) > store.MaxAuditString || l[1] != "ok" {
		t.Errorf("list = %d bytes, %q", len(l[0]), l[1])
	}
	if m := got.Detail["many"].(map[string]any); len(m) != store.MaxAuditItems {
		t.Errorf("many kept %d members, want %d", len(m), store.MaxAuditItems)
	}
	if len(e.Detail["event_type"].(string)) != len(huge) {
		t.Error("Bounded modified the caller's detail")
	}
}
