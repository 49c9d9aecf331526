package sim

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// appendJSON appends the JSON encoding of v to b, byte for byte what
// encoding/json's Marshal produces (map keys sorted, HTML characters
// escaped), without reflection for the shapes server events are built
// from: maps of string to any, slices of any, strings, integers, finite
// floats, booleans and nil. Anything else (structs such as
// realtime.Usage, strings that need escaping, named types) is handed to
// json.Marshal, so the output never differs.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		// encoding/json uses %f-style output in this range, exponents
		// outside it.
		if a := math.Abs(x); a == 0 || a >= 1e-6 && a < 1e21 {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
	case map[string]any:
		return appendJSONObject(b, x, '{')
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendJSONObject appends the members of m in sorted key order, the
// first one preceded by lead ('{' for a whole object, ',' to continue
// one), and the closing brace. A nil map is null, as in encoding/json.
func appendJSONObject(b []byte, m map[string]any, lead byte) ([]byte, error) {
	if m == nil && lead == '{' {
		return append(b, "null"...), nil
	}
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 && lead == '{' {
		return append(b, "{}"...), nil
	}
	var err error
	for i, k := range keys {
		if i == 0 {
			b = append(b, lead)
		} else {
			b = append(b, ',')
		}
		if b, err = appendJSONString(b, k); err != nil {
			return b, err
		}
		b = append(b, ':')
		if b, err = appendJSON(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONString appends s quoted. Printable ASCII other than the
// characters encoding/json escapes (" \ < > &) is copied; any other string
// goes through json.Marshal.
func appendJSONString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, err := json.Marshal(s)
			if err != nil {
				return b, err
			}
			return append(b, j...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}
