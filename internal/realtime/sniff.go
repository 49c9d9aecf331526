package realtime

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// maxDepth is encoding/json's nesting limit; deeper documents are invalid
// for it, so they are for EventType too.
const maxDepth = 10000

// EventType returns the "type" of a JSON event without decoding the rest.
//
// It reads the same value encoding/json would when the frame is decoded into
// a map[string]json.RawMessage and the "type" entry into a string: the frame
// must be one valid JSON object (trailing white space allowed), the key must
// be exactly "type" after unescaping (no case folding: the upstream API is
// not Go and matches keys exactly), the last duplicate key wins, and the
// value must be a JSON string (escapes and invalid UTF-8 are handled like
// encoding/json). ok is false otherwise.
//
// The whole frame is validated, but strings are skipped eight bytes at a
// time and only the type value is materialised, so a 64 KiB audio delta
// costs a fraction of a json.Unmarshal.
func EventType(frame []byte) (string, bool) {
	s := scanner{buf: frame}
	s.skipSpace()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '{' {
		return "", false
	}
	typ, ok := s.topObject()
	if !ok {
		return "", false
	}
	s.skipSpace()
	if s.pos != len(s.buf) {
		return "", false
	}
	return typ, true
}

// UpstreamEventType returns the "type" of an event from upstream. Upstream
// (the OpenAI API, or the configured simulator) is trusted to send one
// well-formed object per frame with "type" first, as every server event
// does; then the type is read from the opening bytes and the rest (an audio
// delta's base64 is nearly all of the frame) is not scanned. Any other
// shape — a space, an escape, another key first — falls back to EventType's
// full scan, so a frame EventType rejects is never given a type here unless
// it opens with a plain type string.
func UpstreamEventType(frame []byte) (string, bool) {
	const prefix = `{"type":"`
	if len(frame) > len(prefix) && string(frame[:len(prefix)]) == prefix {
		rest := frame[len(prefix):]
		for i, c := range rest {
			if c == '"' {
				if i == 0 {
					break // "" is a valid but useless type: let EventType answer
				}
				return intern(rest[:i]), true
			}
			if c == '\\' || c < 0x20 || c >= 0x80 {
				break
			}
		}
	}
	return EventType(frame)
}

// scanner is a validating JSON scanner over one frame.
type scanner struct {
	buf   []byte
	pos   int
	depth int
	found bool // a string "type" value was seen at the top level
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// topObject scans the top-level object and returns the last "type" value;
// ok is false when the object is invalid or has no string "type".
func (s *scanner) topObject() (string, bool) {
	s.pos++ // '{'
	s.depth = 1
	var typ string
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		return "", false
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
			return "", false
		}
		kstart := s.pos
		escaped, ok := s.skipString()
		if !ok {
			return "", false
		}
		key := s.buf[kstart:s.pos]
		isType := false
		if !escaped {
			isType = string(key) == `"type"`
		} else {
			var k string
			if json.Unmarshal(key, &k) != nil {
				return "", false
			}
			isType = k == "type"
		}
		s.skipSpace()
		if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
			return "", false
		}
		s.pos++
		s.skipSpace()
		vstart := s.pos
		if !s.value() {
			return "", false
		}
		if isType {
			// Last duplicate wins, whatever its kind.
			typ, s.found = "", false
			if s.buf[vstart] == '"' {
				v := s.buf[vstart:s.pos]
				if !bytesNeedDecode(v) {
					typ = intern(v[1 : len(v)-1])
				} else if t, ok := decodeString(v); ok {
					typ = t
				} else {
					return "", false
				}
				s.found = true
			}
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			return "", false
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			if !s.found {
				return "", false
			}
			return typ, true
		default:
			return "", false
		}
	}
}

// decodeString decodes a quoted JSON string as encoding/json does. Kept
// apart so the caller's variables stay off the heap.
func decodeString(q []byte) (string, bool) {
	var v string
	if json.Unmarshal(q, &v) != nil {
		return "", false
	}
	return v, true
}

// bytesNeedDecode reports whether a quoted string holds escapes or
// non-ASCII bytes, which encoding/json would transform.
func bytesNeedDecode(q []byte) bool {
	for _, c := range q[1 : len(q)-1] {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

// value scans any JSON value.
func (s *scanner) value() bool {
	if s.pos >= len(s.buf) {
		return false
	}
	switch c := s.buf[s.pos]; {
	case c == '"':
		_, ok := s.skipString()
		return ok
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.buf)-s.pos < len(lit) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

func (s *scanner) object() bool { return s.container('}') }

func (s *scanner) array() bool { return s.container(']') }

// container scans an object (end '}') or an array (end ']') from its
// opening bracket: members separated by commas, each a "key": value pair
// in an object and a value in an array.
func (s *scanner) container(end byte) bool {
	s.depth++
	if s.depth > maxDepth {
		return false
	}
	s.pos++ // '{' or '['
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == end {
		s.pos++
		s.depth--
		return true
	}
	for {
		s.skipSpace()
		if end == '}' && !s.key() {
			return false
		}
		if !s.value() {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			return false
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case end:
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// key scans an object member's `"name":` and the space after it.
func (s *scanner) key() bool {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		return false
	}
	if _, ok := s.skipString(); !ok {
		return false
	}
	s.skipSpace()
	if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
		return false
	}
	s.pos++
	s.skipSpace()
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	b := s.buf
	if b[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(b) {
		return false
	}
	switch {
	case b[s.pos] == '0':
		s.pos++
	case b[s.pos] >= '1' && b[s.pos] <= '9':
		for s.pos < len(b) && isDigit(b[s.pos]) {
			s.pos++
		}
	default:
		return false
	}
	if s.pos < len(b) && b[s.pos] == '.' {
		s.pos++
		if s.pos >= len(b) || !isDigit(b[s.pos]) {
			return false
		}
		for s.pos < len(b) && isDigit(b[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(b) && (b[s.pos] == 'e' || b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(b) && (b[s.pos] == '+' || b[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(b) || !isDigit(b[s.pos]) {
			return false
		}
		for s.pos < len(b) && isDigit(b[s.pos]) {
			s.pos++
		}
	}
	return true
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special reports, per byte of x, the high bit set where the byte is '"',
// '\\' or a control character (< 0x20). Exact, no false positives.
func special(x uint64) uint64 {
	const low7 = ^uint64(msb)
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	// A byte b is < n (n <= 0x80) iff b has no high bit and
	// (b & 0x7f) + (0x80 - n) has none either; the per-byte sums never carry.
	ltQ := ^((q & low7) + lsb*0x7f) & ^q
	ltB := ^((bs & low7) + lsb*0x7f) & ^bs
	ltC := ^((x & low7) + lsb*(0x80-0x20)) & ^x
	return (ltQ | ltB | ltC) & msb
}

// skipString scans a string starting at '"', validating escapes and
// rejecting control characters. escaped reports whether it held a
// backslash.
func (s *scanner) skipString() (escaped bool, ok bool) {
	b := s.buf
	i := s.pos + 1
	for {
		for i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i : i+8]))
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			return false, false
		}
		c := b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return false, false
					}
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
