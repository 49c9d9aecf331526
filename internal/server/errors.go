package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/store"
)

// apiError is an error the client may see: an HTTP status and the fields of
// OpenAI's error envelope. Message never holds a secret.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Message string
	Param   string
	// RetryAfter, when positive, is sent as Retry-After in whole seconds
	// rounded up.
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, param, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Param: param, Message: message}
}

func unauthorized(code, message string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: code, Message: message}
}

func forbidden(code, message string) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "invalid_request_error", Code: code, Message: message}
}

func notFound(message string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Message: message}
}

var errStoreUnavailable = &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "store_unavailable",
	Message: "The gateway cannot reach its store right now; no new session can start. Retry shortly."}

// envelope is OpenAI's error body.
type envelope struct {
	Error envelopeError `json:"error"`
}

type envelopeError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    string  `json:"code"`
	Param   *string `json:"param"`
}

// toAPIError maps any error to what the client sees. Unknown errors become
// a generic 500; their detail goes only to the log.
func toAPIError(err error) *apiError {
	var ae *apiError
	var ref *govern.Refusal
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ref):
		status, typ := ref.HTTP()
		return &apiError{Status: status, Type: typ, Code: ref.Code, Message: ref.Message, Param: ref.Param, RetryAfter: ref.RetryAfter}
	case errors.Is(err, store.ErrNotFound):
		return notFound("No such object.")
	case errors.Is(err, store.ErrUnavailable):
		return errStoreUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "timeout", Message: "The request timed out."}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error", Message: "The gateway had an internal error."}
}

// writeError writes err as an OpenAI error envelope and logs unexpected
// errors (never with request secrets: only the error chain).
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", boundedPath(r), "status", ae.Status, "err", err)
	}
	var param *string
	if ae.Param != "" {
		param = &ae.Param
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((ae.RetryAfter+time.Second-1)/time.Second), 10))
	}
	encode(w, ae.Status, envelope{Error: envelopeError{Message: ae.Message, Type: ae.Type, Code: ae.Code, Param: param}})
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, slog.New(slog.DiscardHandler), &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Code: "unknown_url", Message: "Unknown request URL: " + store.Sanitize(r.Method, 16) + " " + boundedPath(r) + "."})
	})
}
