package token

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func TestMintParseRoundTrip(t *testing.T) {
	for _, mint := range []func() (Token, error){
		func() (Token, error) { return NewSession(rand.Reader) },
		func() (Token, error) { return NewAppKey(rand.Reader) },
	} {
		tok, err := mint()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(tok.Reveal())
		if err != nil {
			t.Fatalf("Parse(minted) = %v", err)
		}
		if got != tok {
			t.Fatalf("round trip changed the token")
		}
		if n := len(tok.Reveal()) - len(tok.Prefix()); n != bodyLen+checksumLen {
			t.Fatalf("length after prefix = %d", n)
		}
	}
}

func TestMintDeterministicAndFullRange(t *testing.T) {
	ones := bytes.Repeat([]byte{0xff}, 32)
	tok, err := NewSession(bytes.NewReader(ones))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(tok.Reveal()); err != nil {
		t.Fatalf("max value does not parse: %v", err)
	}
	zero, _ := NewSession(bytes.NewReader(make([]byte, 32)))
	if !strings.HasPrefix(zero.Reveal(), SessionPrefix+strings.Repeat("0", bodyLen)) {
		t.Fatalf("zero body = %q", zero.Reveal())
	}
	if _, err := NewSession(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("short random source accepted")
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := NewSession(rand.Reader)
	s := good.Reveal()
	flip := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrPrefix},
		{"openai key", "sk-proj-abc", ErrPrefix},
		{"openai ek", "ek_68af296e8e408191a1120ab6383263c2", ErrPrefix},
		{"short", s[:len(s)-1], ErrLength},
		{"long", s + "0", ErrLength},
		{"alphabet", s[:10] + "-" + s[11:], ErrAlphabet},
		{"body typo", flip(12), ErrChecksum},
		{"checksum typo", flip(len(s) - 1), ErrChecksum},
		{"kind swapped", AppKeyPrefix + s[len(SessionPrefix):], ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	tok, _ := NewAppKey(rand.Reader)
	secret := tok.Reveal()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "tok", tok)
	out := buf.String() + fmt.Sprint(tok) + fmt.Sprintf("%v %s %#v", tok, tok, tok)
	body := secret[len(AppKeyPrefix) : len(AppKeyPrefix)+bodyLen]
	if strings.Contains(out, body) {
		t.Fatalf("secret leaked: %s", out)
	}
	if !strings.Contains(buf.String(), tok.ID()) {
		t.Fatalf("log lacks id: %s", buf.String())
	}
}

func TestHashAndID(t *testing.T) {
	tok, _ := NewSession(rand.Reader)
	h := tok.Hash()
	if len(h) != 64 || h != Hash(tok.Reveal()) {
		t.Fatalf("hash %q", h)
	}
	id := tok.ID()
	if !strings.HasPrefix(id, "tok_") || len(id) != 12 {
		t.Fatalf("id %q", id)
	}
	if strings.HasPrefix(h, id[4:]) || strings.Contains(tok.Reveal(), id[4:]) {
		t.Fatalf("id %q derived from hash or token", id)
	}
	if !Equal("abc", "abc") || Equal("abc", "abd") || Equal("abc", "ab") {
		t.Fatal("Equal wrong")
	}
}

func FuzzParse(f *testing.F) {
	tok, _ := NewSession(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	key, _ := NewAppKey(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	f.Add(tok.Reveal())
	f.Add(key.Reveal())
	f.Add("ek_vg_")
	f.Add("vgk_\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v not ErrMalformed", err)
			}
			return
		}
		if string(got) != s || got.Prefix() == "" {
			t.Fatalf("accepted %q as %q", s, got)
		}
		// Anything accepted must be re-derivable: body → checksum.
		p := got.Prefix()
		if checksum(s[:len(p)+bodyLen]) != s[len(p)+bodyLen:] {
			t.Fatal("accepted bad checksum")
		}
	})
}

// TestBase62MatchesBigInt: the limb division writes what math/big's
// repeated DivMod wrote, so tokens keep their format.
func TestBase62MatchesBigInt(t *testing.T) {
	ref := func(b []byte, width int) string {
		n := new(big.Int).SetBytes(b)
		out := make([]byte, width)
		mod := new(big.Int)
		for i := width - 1; i >= 0; i-- {
			n.DivMod(n, big.NewInt(62), mod)
			out[i] = alphabet[mod.Int64()]
		}
		return string(out)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, []int{32, 4, 1, 9, 17}[i%5])
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i == 0 {
			for j := range b {
				b[j] = 0xff
			}
		}
		for _, width := range []int{bodyLen, checksumLen, 3} {
			if got, want := base62(b, width), ref(b, width); got != want {
				t.Fatalf("base62(%x, %d) = %s, want %s", b, width, got, want)
			}
		}
	}
}
