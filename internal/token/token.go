// Package token mints, parses and hashes voicegate's bearer secrets: session
// tokens ("ek_vg_…", given to browsers) and app keys ("vgk_…", held by app
// backends).
//
// A value is prefix + body + checksum. The body is 43 base62 characters
// encoding 256 bits from the injected random source (62^43 > 2^256, so every
// 256-bit value fits). The checksum is the CRC-32 (IEEE) of prefix+body,
// written as 6 base62 characters (62^6 > 2^32). The checksum lets Parse refuse
// typos and garbage without a store lookup; it is not a security feature.
//
// At rest only Hash (hex SHA-256 of the whole value) is kept. ID is a short
// public identifier for logs and audit, computed in a separate hash domain so
// it is never a prefix of the secret nor of its stored hash.
package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/bits"
	"strings"
)

// Prefixes of the two kinds of secrets.
const (
	SessionPrefix = "ek_vg_"
	AppKeyPrefix  = "vgk_"
)

const (
	bodyLen     = 43
	checksumLen = 6
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Errors returned by Parse; all wrap ErrMalformed.
var (
	ErrMalformed = errors.New("token: malformed")
	ErrPrefix    = fmt.Errorf("%w: unknown prefix", ErrMalformed)
	ErrLength    = fmt.Errorf("%w: wrong length", ErrMalformed)
	ErrAlphabet  = fmt.Errorf("%w: character outside base62", ErrMalformed)
	ErrChecksum  = fmt.Errorf("%w: checksum mismatch", ErrMalformed)
)

// Token is a session token or an app key. String redacts it and LogValue
// prints its ID, so a careless log line cannot leak it; use Reveal to get the
// secret itself.
type Token string

// String returns a redacted form (the prefix and the ID).
func (t Token) String() string { return t.Prefix() + "REDACTED(" + ID(string(t)) + ")" }

// GoString redacts the token in %#v too.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer: the token's short ID.
func (t Token) LogValue() slog.Value { return slog.StringValue(ID(string(t))) }

// Reveal returns the secret value, to be shown once to its owner.
func (t Token) Reveal() string { return string(t) }

// Hash is the hex SHA-256 stored in place of the token.
func (t Token) Hash() string { return Hash(string(t)) }

// ID is the short public identifier of the token.
func (t Token) ID() string { return ID(string(t)) }

// Prefix returns "ek_vg_", "vgk_" or "" for an unknown prefix.
func (t Token) Prefix() string {
	switch {
	case strings.HasPrefix(string(t), SessionPrefix):
		return SessionPrefix
	case strings.HasPrefix(string(t), AppKeyPrefix):
		return AppKeyPrefix
	}
	return ""
}

// IsSession reports whether t is a session token ("ek_vg_").
func (t Token) IsSession() bool { return t.Prefix() == SessionPrefix }

// IsAppKey reports whether t is an app key ("vgk_").
func (t Token) IsAppKey() bool { return t.Prefix() == AppKeyPrefix }

// NewSession mints a session token from 256 bits read from rand.
func NewSession(rand io.Reader) (Token, error) { return mint(SessionPrefix, rand) }

// NewAppKey mints an app key from 256 bits read from rand.
func NewAppKey(rand io.Reader) (Token, error) { return mint(AppKeyPrefix, rand) }

func mint(prefix string, rand io.Reader) (Token, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("token: read random: %w", err)
	}
	body := base62(b[:], bodyLen)
	return Token(prefix + body + checksum(prefix+body)), nil
}

// Parse checks the prefix, length, alphabet and checksum of s without any
// store lookup. It accepts both kinds; callers check IsSession or IsAppKey.
func Parse(s string) (Token, error) {
	var prefix string
	switch {
	case strings.HasPrefix(s, SessionPrefix):
		prefix = SessionPrefix
	case strings.HasPrefix(s, AppKeyPrefix):
		prefix = AppKeyPrefix
	default:
		return "", ErrPrefix
	}
	if len(s) != len(prefix)+bodyLen+checksumLen {
		return "", ErrLength
	}
	rest := s[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(alphabet, rest[i]) < 0 {
			return "", ErrAlphabet
		}
	}
	body, sum := rest[:bodyLen], rest[bodyLen:]
	if subtle.ConstantTimeCompare([]byte(sum), []byte(checksum(prefix+body))) != 1 {
		return "", ErrChecksum
	}
	return Token(s), nil
}

// Hash returns the hex SHA-256 of s: the only form in which secrets are stored.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ID returns a short non-secret identifier of s ("tok_" + 8 hex characters of
// SHA-256 over a domain-separated input), safe for logs and the audit trail.
func ID(s string) string {
	h := sha256.Sum256([]byte("voicegate/token-id\x00" + s))
	return "tok_" + hex.EncodeToString(h[:4])
}

// Equal compares two secrets in constant time (for equal lengths).
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func checksum(s string) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE([]byte(s)))
	return base62(sum[:], checksumLen)
}

// base62 writes the big-endian number b in exactly width digits, most
// significant first (its value modulo 62^width). It divides 64-bit limbs in
// place instead of going through math/big: a mint encodes one token.
func base62(b []byte, width int) string {
	var limbs [8]uint64 // up to 64 bytes
	n := (len(b) + 7) / 8
	for i := range n { // limbs[0] most significant; b padded on the left
		end := len(b) - 8*(n-1-i)
		start := max(end-8, 0)
		var v uint64
		for _, c := range b[start:end] {
			v = v<<8 | uint64(c)
		}
		limbs[i] = v
	}
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		var rem uint64
		for j := range n {
			limbs[j], rem = bits.Div64(rem, limbs[j], 62)
		}
		out[i] = alphabet[rem]
	}
	return string(out)
}
