package simrtc

import (
	"encoding/json"
	"net/http"
)

// apiError is an error answered with OpenAI's JSON envelope
// {"error":{"message","type","code","param"}}.
type apiError struct {
	status  int
	message string
	typ     string
	code    string
	param   string // empty = null
}

func (e *apiError) Error() string { return e.message }

func badRequest(code, param, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: code, param: param, message: message}
}

var (
	errInvalidKey = &apiError{
		status:  http.StatusUnauthorized,
		typ:     "invalid_request_error",
		code:    "invalid_api_key",
		message: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
	}
	errMethod = &apiError{
		status:  http.StatusMethodNotAllowed,
		typ:     "invalid_request_error",
		code:    "method_not_allowed",
		message: "Only POST is supported on /v1/realtime/calls.",
	}
	errInternal = &apiError{
		status:  http.StatusInternalServerError,
		typ:     "server_error",
		code:    "internal_error",
		message: "The simulator could not set up the call.",
	}
)

// writeError answers e in the OpenAI envelope.
func writeError(w http.ResponseWriter, e *apiError) {
	var param *string
	if e.param != "" {
		param = &e.param
	}
	body := map[string]any{"error": map[string]any{
		"message": e.message,
		"type":    e.typ,
		"code":    e.code,
		"param":   param,
	}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body)
}
