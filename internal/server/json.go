package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
)

// maxBody bounds JSON request bodies.
const maxBody = 1 << 20

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// decode reads a JSON body into v, refusing unknown fields (reported as
// unknown_parameter with the field as param), trailing data and bodies over
// maxBody, and a body whose Content-Type is not application/json (415: a
// browser form or a text/plain fetch cannot mint on a user's cookie). An
// empty body leaves v unchanged.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength != 0 {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return &apiError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error", Code: "unsupported_content_type",
				Message: "The request body must be JSON, sent with Content-Type: application/json."}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("The request body exceeds %d bytes.", maxBody)}
		}
		return badRequest("invalid_body", "", "Could not read the request body.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeStrict(data, v, "")
}

// decodeStrict decodes one JSON value, refusing duplicate keys at any
// depth, and keys that are not exactly (case included) a field of v:
// encoding/json alone would read {"Session":…} as session and let the last
// of two equal keys win. prefix ("limits.") is prepended to the param of
// errors.
func decodeStrict(data []byte, v any, prefix string) error {
	if err := policy.CheckJSON(data); err != nil {
		if errors.Is(err, policy.ErrDuplicateKey) {
			return badRequest("duplicate_key", "", "The JSON body names a key twice ("+store.Sanitize(err.Error(), 80)+").")
		}
		return badRequest("invalid_json", "", "We could not parse the JSON body of your request.")
	}
	if err := exactKeys(data, reflect.TypeOf(v), prefix); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = prefix + strings.Trim(f, `"`)
			return badRequest("unknown_parameter", f, fmt.Sprintf("Unknown parameter: '%s'.", f))
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			f := prefix + te.Field
			return badRequest("invalid_type", f, fmt.Sprintf("Invalid type for '%s': expected %s.", f, te.Type))
		}
		return badRequest("invalid_json", "", "We could not parse the JSON body of your request.")
	}
	if dec.More() {
		return badRequest("invalid_json", "", "The request body holds more than one JSON value.")
	}
	return nil
}

// exactKeys refuses an object key of data that is not exactly the JSON name
// of a field of t (a struct, or a pointer to one), at every depth of nested
// structs; values of other types (json.RawMessage) are left to their own
// checks.
func exactKeys(data []byte, t reflect.Type, prefix string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil // not an object: the decoder reports the type
	}
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			p := prefix + store.Sanitize(k, 64)
			return badRequest("unknown_parameter", p, fmt.Sprintf("Unknown parameter: '%s'.", p))
		}
		if err := exactKeys(obj[k], ft, prefix+k+"."); err != nil {
			return err
		}
	}
	return nil
}
