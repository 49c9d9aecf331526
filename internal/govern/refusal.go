package govern

import (
	"fmt"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/realtime"
)

// Codes of the governor's refusals, in error events and HTTP envelopes
// (SPEC §6).
const (
	CodeRateLimited       = "rate_limit_exceeded"
	CodeBudgetExceeded    = "budget_exceeded"
	CodeGovernUnavailable = "governance_unavailable"
	CodeSessionInUse      = "session_in_use"
	CodeSessionExpired    = "session_expired"
	CodeSessionExpiring   = "session_expiring"
	CodeIdleTimeout       = "idle_timeout"
	CodeSessionRevoked    = "session_revoked"
)

// Refusal is a typed "no" of the governor. One value serves every
// transport: Event renders it as an in-stream error event, HTTP as the
// status of an HTTP refusal, and Fatal says whether the session ends.
type Refusal struct {
	// Code is the error code ("budget_exceeded", …).
	Code string
	// Message is a sentence the client may see; it never holds a secret.
	Message string
	// Param names the offending field, when there is one.
	Param string
	// EventID is the client event_id the refusal answers ("" for none).
	EventID string
	// Limit names the governing limit, for metrics and audit
	// ("concurrency_per_user", "events_per_second", …).
	Limit string
	// RetryAfter, when positive, says when trying again may succeed.
	RetryAfter time.Duration
	// Fatal ends the session after the error event.
	Fatal bool
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Event renders the refusal as the gateway's in-stream error event.
func (r *Refusal) Event() []byte { return realtime.ErrorEvent(r.Code, r.Message, r.EventID) }

// HTTP is the status of the refusal at the HTTP edge, and the OpenAI
// error type that goes with it.
func (r *Refusal) HTTP() (status int, errType string) {
	switch r.Code {
	case CodeRateLimited:
		return http.StatusTooManyRequests, "rate_limit_error"
	case CodeSessionInUse:
		return http.StatusConflict, "invalid_request_error"
	case CodeBudgetExceeded:
		return http.StatusTooManyRequests, "insufficient_quota"
	case CodeGovernUnavailable:
		return http.StatusServiceUnavailable, "server_error"
	case CodeSessionRevoked:
		return http.StatusForbidden, "invalid_request_error"
	}
	return http.StatusForbidden, "invalid_request_error"
}

func rateLimited(limit string, retry time.Duration, format string, args ...any) *Refusal {
	return &Refusal{Code: CodeRateLimited, Limit: limit, RetryAfter: max(retry, time.Second), Message: fmt.Sprintf(format, args...)}
}

func budgetExceeded(eventID string) *Refusal {
	return &Refusal{Code: CodeBudgetExceeded, Limit: "budget", EventID: eventID,
		Message: "the remaining budget cannot afford a response"}
}

// budgetSpent is the fatal refusal that ends a session whose budget is
// spent.
func budgetSpent() *Refusal {
	return &Refusal{Code: CodeBudgetExceeded, Limit: "budget", Fatal: true, Message: "the budget is spent"}
}

func unavailable(eventID, what string) *Refusal {
	return &Refusal{Code: CodeGovernUnavailable, EventID: eventID, Message: "the gateway cannot check its " + what + " right now"}
}
