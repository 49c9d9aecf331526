package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/voicegate/voicegate/internal/config"
)

// devLoginPath is the demo page's sign-in in dev mode: any name gets a
// session token minted with the admin key on the default tier, within its
// limits.
// Only cmdDev wraps the gateway with devLogin, so `voicegate serve` has no
// such route: there the page signs in with the configured end-user login.
const devLoginPath = "/dev/v1/client_secrets"

// devLogin serves, in front of the gateway's handler next:
//
//	GET  /dev/v1/client_secrets  {"object":"voicegate.dev_login"}: the page's probe for dev mode
//	POST /dev/v1/client_secrets  {"user","session","limits"} → the mint's answer
//
// The POST is rewritten into an admin-key mint of POST
// /v1/realtime/client_secrets for that user, so it goes through the same
// validation, policy, rate limits and audit; it accepts no tier, and its
// limits may only tighten the default tier's, as at any mint. It needs Content-Type application/json and, when the browser
// sends an Origin, this host's own: another site cannot mint through a
// developer's browser (it would need a CORS preflight nobody answers).
func devLogin(adminKey config.Secret) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != devLoginPath {
				next.ServeHTTP(w, r)
				return
			}
			switch r.Method {
			case http.MethodGet, http.MethodHead:
				devJSON(w, http.StatusOK, map[string]any{"object": "voicegate.dev_login", "path": devLoginPath})
				return
			case http.MethodPost:
			default:
				w.Header().Set("Allow", "GET, HEAD, POST")
				devError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
				return
			}
			if o := r.Header.Get("Origin"); o != "" {
				if u, err := url.Parse(o); err != nil || u.Host != r.Host {
					devError(w, http.StatusForbidden, "origin_not_allowed", "The dev sign-in answers only pages served by this gateway.")
					return
				}
			}
			var req struct {
				User    string          `json:"user"`
				Session json.RawMessage `json:"session"`
				Limits  json.RawMessage `json:"limits"`
			}
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				devError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send JSON with Content-Type: application/json.")
				return
			}
			if err := dec.Decode(&req); err != nil {
				devError(w, http.StatusBadRequest, "invalid_json", "The body must be {\"user\": \"a name\", \"session\": {…}, \"limits\": {…}}.")
				return
			}
			req.User = strings.TrimSpace(req.User)
			if req.User == "" || len(req.User) > 64 {
				devError(w, http.StatusBadRequest, "invalid_value", "Sign in with a name of 1 to 64 characters.")
				return
			}
			mint := map[string]any{"user": req.User}
			if len(req.Session) > 0 {
				mint["session"] = req.Session
			}
			if len(req.Limits) > 0 {
				mint["limits"] = req.Limits
			}
			body, _ := json.Marshal(mint) // a string and raw JSON marshal
			r2 := r.Clone(r.Context())
			r2.Method = http.MethodPost
			r2.URL = &url.URL{Path: "/v1/realtime/client_secrets"}
			r2.RequestURI = r2.URL.Path
			r2.Header = http.Header{}
			r2.Header.Set("Content-Type", "application/json")
			r2.Header.Set("Authorization", "Bearer "+adminKey.Reveal())
			r2.Body = io.NopCloser(bytes.NewReader(body))
			r2.ContentLength = int64(len(body))
			next.ServeHTTP(w, r2)
		})
	}
}

func devJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// devError answers in OpenAI's error envelope, like the rest of the API.
func devError(w http.ResponseWriter, status int, code, msg string) {
	devJSON(w, status, map[string]any{"error": map[string]any{"type": "invalid_request_error", "code": code, "message": msg, "param": nil}})
}
