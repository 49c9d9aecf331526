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
	b64, eid, ok := scanAppend(b)
	if !ok {
		return nil, "", false
	}
	audio = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(audio, b64)
	if err != nil {
		return nil, "", false
	}
	return audio[:n], string(eid), true
}

// scanAppend is parseAppend without the base64 decoding: it returns the
// raw "audio" value, which is valid JSON if and only if it decodes as
// base64 (see jsonB64String).
func scanAppend(b []byte) (b64, eventID []byte, ok bool) {
	if len(b) < 2 || b[0] != '{' {
		return nil, nil, false
	}
	rest := b[1:]
	var typ []byte
	for first := true; ; first = false {
		if !first {
			if len(rest) == 0 || rest[0] != ',' {
				break
			}
			rest = rest[1:]
		}
		var key, val []byte
		if key, rest, ok = jsonPlainString(rest); !ok || len(rest) == 0 || rest[0] != ':' {
			return nil, nil, false
		}
		rest = rest[1:]
		if string(key) == "audio" {
			val, rest, ok = jsonB64String(rest)
		} else {
			val, rest, ok = jsonPlainString(rest)
		}
		if !ok {
			return nil, nil, false
		}
		switch string(key) {
		case "type":
			if typ != nil {
				return nil, nil, false
			}
			typ = val
		case "audio":
			if b64 != nil {
				return nil, nil, false
			}
			b64 = val
		case "event_id":
			eventID = val
		default:
			return nil, nil, false
		}
	}
	if string(rest) != "}" || b64 == nil || string(typ) != "input_audio_buffer.append" {
		return nil, nil, false
	}
	return b64, eventID, true
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

// jsonB64String reads a JSON string at the start of b that is meant to
// hold base64, checking only what base64 decoding would let through: a
// backslash (a JSON escape) and CR or LF (skipped by the decoder but not
// allowed raw in JSON). Any other byte that is not plain printable ASCII is
// rejected by the decoder, and the caller then takes the general path.
func jsonB64String(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return nil, nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return nil, nil, false
	}
	s = b[1 : 1+end]
	if bytes.IndexByte(s, '\\') >= 0 || bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return nil, nil, false
	}
	return s, b[2+end:], true
}
