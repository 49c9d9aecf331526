package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
// maxBody. An empty body leaves v unchanged.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
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

// decodeStrict decodes one JSON value, refusing unknown fields; prefix
// ("limits.") is prepended to the param of errors.
func decodeStrict(data []byte, v any, prefix string) error {
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
