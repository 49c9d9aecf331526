package policy

// The firewall's hot path: a client streams audio as
// input_audio_buffer.append events, fifty a second per session. Checking
// such a frame with the general path (encoding/json's validation of a
// long base64 string, a map of members) costs more than relaying it. So a
// frame that has exactly the plain shape every SDK sends —
//
//	{"type":"input_audio_buffer.append","audio":"<base64>","event_id":"<id>"}
//
// in any key order, each key once, event_id optional, whitespace between
// tokens, no escapes, the audio only base64 characters and the event_id
// only [A-Za-z0-9_.:-] — is recognised by one pass over its bytes. Such a
// frame is valid JSON by construction. Anything else, however slightly
// different, takes the general path: the fast path accepts a strict
// subset of what the general path passes (FuzzFastAppend checks it).

const typeAppend = "input_audio_buffer.append"

// fastAppend reports whether frame is a plain append, with its event_id.
func fastAppend(frame []byte) (eventID string, ok bool) {
	i := skipWS(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return "", false
	}
	var seenType, seenAudio, seenID bool
	i = skipWS(frame, i+1)
	for {
		k0, k1, next, ok := plainString(frame, i, &keyBytes)
		if !ok {
			return "", false
		}
		key := frame[k0:k1]
		i = skipWS(frame, next)
		if i >= len(frame) || frame[i] != ':' {
			return "", false
		}
		i = skipWS(frame, i+1)
		switch string(key) { // no allocation: a switch on a converted slice
		case "type":
			if seenType {
				return "", false
			}
			seenType = true
			v0, v1, next, ok := plainString(frame, i, &keyBytes)
			if !ok || string(frame[v0:v1]) != typeAppend {
				return "", false
			}
			i = next
		case "audio":
			if seenAudio {
				return "", false
			}
			seenAudio = true
			_, _, next, ok := plainString(frame, i, &base64Bytes)
			if !ok {
				return "", false
			}
			i = next
		case "event_id":
			if seenID {
				return "", false
			}
			seenID = true
			v0, v1, next, ok := plainString(frame, i, &idBytes)
			if !ok || v1-v0 > 128 {
				return "", false
			}
			eventID, i = string(frame[v0:v1]), next
		default:
			return "", false
		}
		i = skipWS(frame, i)
		if i >= len(frame) {
			return "", false
		}
		if frame[i] == '}' {
			if skipWS(frame, i+1) != len(frame) || !seenType || !seenAudio {
				return "", false
			}
			return eventID, true
		}
		if frame[i] != ',' {
			return "", false
		}
		i = skipWS(frame, i+1)
	}
}

// plainString reads the string starting at frame[i] (its opening quote)
// whose bytes are all in allowed (so no quote, backslash or control
// byte); it returns the content's bounds and the index after the closing
// quote.
func plainString(frame []byte, i int, allowed *[256]bool) (start, end, next int, ok bool) {
	if i >= len(frame) || frame[i] != '"' {
		return 0, 0, 0, false
	}
	j := i + 1
	for j < len(frame) && allowed[frame[j]] {
		j++
	}
	if j >= len(frame) || frame[j] != '"' {
		return 0, 0, 0, false
	}
	return i + 1, j, j + 1, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// The byte classes of the plain strings: base64 audio, event ids, and the
// keys and type this path knows.
var base64Bytes, idBytes, keyBytes [256]bool

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		base64Bytes[c], idBytes[c] = true, true
	}
	for c := 'a'; c <= 'z'; c++ {
		base64Bytes[c], idBytes[c], keyBytes[c] = true, true, true
	}
	for c := '0'; c <= '9'; c++ {
		base64Bytes[c], idBytes[c] = true, true
	}
	for _, c := range "+/=" {
		base64Bytes[c] = true
	}
	for _, c := range "_.:-" {
		idBytes[c] = true
	}
	for _, c := range "_." {
		keyBytes[c] = true
	}
}
