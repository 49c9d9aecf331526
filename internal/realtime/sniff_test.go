package realtime

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// refEventType is the reference EventType implements: decode into a map and
// read the "type" entry as a string.
func refEventType(frame []byte) (string, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(frame, &m); err != nil || m == nil {
		return "", false
	}
	raw, ok := m["type"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

var sniffCases = []struct {
	name  string
	frame string
	want  string
	ok    bool
}{
	{"simple", `{"type":"response.done","event_id":"e1"}`, "response.done", true},
	{"type last", `{"event_id":"e1","response":{"type":"inner"},"type":"x"}`, "x", true},
	{"nested only", `{"response":{"type":"inner"}}`, "", false},
	{"duplicate last wins", `{"type":"a","type":"b"}`, "b", true},
	{"duplicate last non-string", `{"type":"a","type":1}`, "", false},
	{"duplicate string after null", `{"type":null,"type":"b"}`, "b", true},
	{"escaped key", `{"typ\u0065":"x"}`, "x", true},
	{"escaped value", `{"type":"a\"b\u00e9\n"}`, "a\"b\u00e9\n", true},
	{"invalid utf8 value", "{\"type\":\"a\xffb\"}", "a\ufffdb", true},
	{"case folded key ignored", `{"Type":"x"}`, "", false},
	{"whitespace", " \n{ \"type\" :\t\"x\" } \r\n", "x", true},
	{"trailing garbage", `{"type":"x"}x`, "", false},
	{"two objects", `{"type":"x"}{}`, "", false},
	{"not object", `["type","x"]`, "", false},
	{"empty", ``, "", false},
	{"empty object", `{}`, "", false},
	{"number value", `{"type":5}`, "", false},
	{"bad escape", `{"type":"\x"}`, "", false},
	{"control char", "{\"type\":\"a\tb\"}", "", false},
	{"bad number", `{"a":01,"type":"x"}`, "", false},
	{"good numbers", `{"a":[-0.5e+10,0,12.25,1E3],"type":"x"}`, "x", true},
	{"unterminated", `{"type":"x"`, "", false},
	{"trailing comma", `{"type":"x",}`, "", false},
	{"literals", `{"a":true,"b":false,"c":null,"type":"x"}`, "x", true},
	{"bad literal", `{"a":tru,"type":"x"}`, "", false},
	{"empty type", `{"type":""}`, "", true},
	{"long audio", `{"type":"response.output_audio.delta","delta":"` + strings.Repeat("QUJD", 5000) + `"}`, "response.output_audio.delta", true},
}

func TestEventType(t *testing.T) {
	for _, tc := range sniffCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := EventType([]byte(tc.frame))
			if got != tc.want || ok != tc.ok {
				t.Errorf("EventType(%q) = %q, %v; want %q, %v", tc.frame, got, ok, tc.want, tc.ok)
			}
			rgot, rok := refEventType([]byte(tc.frame))
			if rgot != got || rok != ok {
				t.Errorf("reference = %q, %v; EventType = %q, %v", rgot, rok, got, ok)
			}
		})
	}
}

func TestEventTypeDepth(t *testing.T) {
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		frame := `{"type":"x","a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
		got, ok := EventType([]byte(frame))
		rgot, rok := refEventType([]byte(frame))
		if got != rgot || ok != rok {
			t.Errorf("depth %d: EventType = %q,%v; reference = %q,%v", depth, got, ok, rgot, rok)
		}
	}
}

func TestSpecialBytes(t *testing.T) {
	for b := 0; b < 256; b++ {
		want := b == '"' || b == '\\' || b < 0x20
		for pos := 0; pos < 8; pos++ {
			var x uint64 = 0x4141414141414141
			x &^= 0xff << (8 * pos)
			x |= uint64(b) << (8 * pos)
			got := special(x) != 0
			if got != want {
				t.Fatalf("special(byte %#x at %d) = %v, want %v", b, pos, got, want)
			}
		}
	}
}

func FuzzEventType(f *testing.F) {
	for _, tc := range sniffCases {
		f.Add([]byte(tc.frame))
	}
	f.Add([]byte(`{"type":"a","x":{"type":"b"},"type":"c"}`))
	f.Add([]byte(`{"\u0074ype":"\ud800"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := EventType(frame)
		want, wok := refEventType(frame)
		if got != want || ok != wok {
			t.Fatalf("EventType(%q) = %q, %v; encoding/json reads %q, %v", frame, got, ok, want, wok)
		}
	})
}

func audioDelta(n int) []byte {
	audio := base64.StdEncoding.EncodeToString(make([]byte, n*3/4))
	return []byte(fmt.Sprintf(`{"type":"response.output_audio.delta","event_id":"event_ABCDEFGHIJKLMNOPQRSTU","response_id":"resp_ABCDEFGHIJKLMNOPQRSTU","item_id":"item_ABCDEFGHIJKLMNOPQRSTU","output_index":0,"content_index":0,"delta":%q}`, audio))
}

func BenchmarkEventType(b *testing.B) {
	frame := audioDelta(64 << 10)
	b.Run("sniff", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if typ, ok := EventType(frame); !ok || typ != "response.output_audio.delta" {
				b.Fatal(typ, ok)
			}
		}
	})
	b.Run("upstream", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if typ, ok := UpstreamEventType(frame); !ok || typ != "response.output_audio.delta" {
				b.Fatal(typ, ok)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var e struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(frame, &e); err != nil || e.Type != "response.output_audio.delta" {
				b.Fatal(err)
			}
		}
	})
}

// topTypeKeys counts the top-level "type" keys of a valid JSON object.
func topTypeKeys(frame []byte) int {
	dec := json.NewDecoder(strings.NewReader(string(frame)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return -1
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		if tok == "type" {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return -1
		}
	}
	return n
}

func TestUpstreamEventType(t *testing.T) {
	for _, tc := range sniffCases {
		got, ok := UpstreamEventType([]byte(tc.frame))
		if tc.ok && topTypeKeys([]byte(tc.frame)) == 1 && (got != tc.want || !ok) {
			t.Errorf("%s: UpstreamEventType(%q) = %q, %v; want %q", tc.name, tc.frame, got, ok, tc.want)
		}
		if !tc.ok && ok && !strings.HasPrefix(tc.frame, `{"type":"`) {
			t.Errorf("%s: UpstreamEventType(%q) = %q, true for a frame EventType refuses", tc.name, tc.frame, got)
		}
	}
	// The fast path reads only the opening bytes: a delta whose tail is cut
	// still has its type, which a full scan refuses.
	cut := audioDelta(1 << 10)
	cut = cut[:len(cut)-10]
	if got, ok := UpstreamEventType(cut); !ok || got != "response.output_audio.delta" {
		t.Errorf("fast path: %q, %v", got, ok)
	}
	if _, ok := EventType(cut); ok {
		t.Error("EventType accepted a truncated frame")
	}
	// A known type is interned: sniffing it allocates nothing.
	frame := audioDelta(64 << 10)
	if n := testing.AllocsPerRun(100, func() { UpstreamEventType(frame) }); n != 0 {
		t.Errorf("UpstreamEventType allocates %.0f times per delta, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { EventType(frame) }); n != 0 {
		t.Errorf("EventType allocates %.0f times per delta, want 0", n)
	}
}

// FuzzUpstreamEventType: on a frame with one top-level "type", the fast
// path agrees with the full scan; a frame that does not open with a plain
// type string gets EventType's answer.
func FuzzUpstreamEventType(f *testing.F) {
	for _, tc := range sniffCases {
		f.Add([]byte(tc.frame))
	}
	f.Add([]byte(`{"type":"a\u0062","x":1}`))
	f.Add([]byte(`{"type":"résumé"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := UpstreamEventType(frame)
		want, wok := EventType(frame)
		if wok && topTypeKeys(frame) == 1 && (got != want || !ok) {
			t.Fatalf("UpstreamEventType(%q) = %q, %v; EventType = %q", frame, got, ok, want)
		}
		if !strings.HasPrefix(string(frame), `{"type":"`) && (got != want || ok != wok) {
			t.Fatalf("UpstreamEventType(%q) = %q, %v; EventType = %q, %v", frame, got, ok, want, wok)
		}
	})
}
