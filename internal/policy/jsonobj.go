package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
)

// errDuplicateKey marks JSON that names one key twice in an object. Parsers
// disagree on which value wins, so a firewall must refuse such input rather
// than guess what upstream will read.
var errDuplicateKey = errors.New("duplicate key")

// ErrDuplicateKey marks JSON that names one key twice in an object.
var ErrDuplicateKey = errDuplicateKey

// CheckJSON verifies that raw is exactly one JSON value with no duplicate
// object keys at any depth (those errors wrap ErrDuplicateKey). The HTTP
// layer checks request bodies with it, as the firewall checks events.
func CheckJSON(raw []byte) error { return checkJSON(raw) }

// checkJSON verifies that raw is exactly one JSON value with no duplicate
// object keys at any depth.
func checkJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type level struct {
		obj       bool
		expectKey bool
		keys      map[string]struct{}
	}
	var stack []*level
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || values != 1 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top == nil && values == 1 {
			return errors.New("trailing data after the json value")
		}
		if top != nil && top.obj && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					values++
				}
				continue
			}
			k := tok.(string) // the decoder only yields strings as keys
			if _, dup := top.keys[k]; dup {
				return fmt.Errorf("%w %q", errDuplicateKey, truncate(k, 40))
			}
			top.keys[k] = struct{}{}
			top.expectKey = false
			continue
		}
		if top != nil && top.obj {
			top.expectKey = true // after this value comes a key or '}'
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{obj: true, expectKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				values++
			}
		default:
			if len(stack) == 0 {
				values++
			}
		}
	}
}

// decodeAny decodes raw keeping numbers exact.
func decodeAny(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonEqual compares decoded JSON values; numbers compare by value, so 1
// and 1.0 are equal, and object key order never matters.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, ok1 := new(big.Rat).SetString(string(x))
		fy, ok2 := new(big.Rat).SetString(string(y))
		return ok1 && ok2 && fx.Cmp(fy) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a, b)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// topLevel splits a JSON object into its members without decoding their
// values, refusing repeated keys. It is the hot path for audio appends, so
// it scans bytes instead of tokenising: frame must already satisfy
// json.Valid. The values alias frame.
func topLevel(frame []byte) (map[string][]byte, error) {
	i := skipSpace(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return nil, errors.New("event must be a json object")
	}
	members := make(map[string][]byte, 4)
	i = skipSpace(frame, i+1)
	if frame[i] == '}' {
		return members, nil
	}
	for {
		// frame[i] is the opening quote of a key.
		end := skipString(frame, i)
		key, err := decodeKey(frame[i:end])
		if err != nil {
			return nil, err
		}
		if _, dup := members[key]; dup {
			return nil, fmt.Errorf("%w %q", errDuplicateKey, truncate(key, 40))
		}
		i = skipSpace(frame, end)
		i = skipSpace(frame, i+1) // past ':'
		vend := skipValue(frame, i)
		members[key] = frame[i:vend]
		i = skipSpace(frame, vend)
		if frame[i] == '}' {
			return members, nil
		}
		i = skipSpace(frame, i+1) // past ','
	}
}

func decodeKey(quoted []byte) (string, error) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var s string
	err := json.Unmarshal(quoted, &s)
	return s, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexAny(b[i:], `"\`)
		i += j
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // an escape: skip the backslash and the escaped byte
	}
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}
