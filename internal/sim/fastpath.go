package sim

import (
	"bytes"
	"encoding/base64"
)

// parseAppend decodes the common shape of input_audio_buffer.append — a
// flat object of "type", "audio" and optional "event_id" string members in
// any order, without whitespace, escapes or non-ASCII — without
// encoding/json, which dominates the cost of audio input under load. ok is
// false for any other shape; the caller then takes the general path, so
// results never differ.
func parseAppend(b []byte) (audio []byte, eventID string, ok bool) {
	if len(b) < 2 || b[0] != '{' {
		return nil, "", false
	}
	rest := b[1:]
	var b64, typ []byte
	for first := true; ; first = false {
		if !first {
			if len(rest) == 0 || rest[0] != ',' {
				break
			}
			rest = rest[1:]
		}
		var key, val []byte
		if key, rest, ok = jsonPlainString(rest); !ok || len(rest) == 0 || rest[0] != ':' {
			return nil, "", false
		}
		if val, rest, ok = jsonPlainString(rest[1:]); !ok {
			return nil, "", false
		}
		switch string(key) {
		case "type":
			if typ != nil {
				return nil, "", false
			}
			typ = val
		case "audio":
			if b64 != nil {
				return nil, "", false
			}
			b64 = val
		case "event_id":
			eventID = string(val)
		default:
			return nil, "", false
		}
	}
	if string(rest) != "}" || b64 == nil || string(typ) != "input_audio_buffer.append" {
		return nil, "", false
	}
	audio = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(audio, b64)
	if err != nil {
		return nil, "", false
	}
	return audio[:n], eventID, true
}

// jsonPlainString reads a printable-ASCII JSON string without escapes at the
// start of b.
func jsonPlainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return nil, nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return nil, nil, false
	}
	for _, c := range b[1 : 1+end] {
		if c == '\\' || c < 0x20 || c >= 0x80 { // escapes, control bytes, non-ASCII: general path
			return nil, nil, false
		}
	}
	return b[1 : 1+end], b[2+end:], true
}
