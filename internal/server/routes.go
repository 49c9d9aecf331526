package server

import "net/http"

// handler returns the whole HTTP surface of the gateway.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()

	// OpenAI-compatible surface.
	mux.Handle("POST /v1/realtime/client_secrets", s.cors(handleMint(s, mintOpenAI)))
	mux.Handle("OPTIONS /v1/realtime/client_secrets", s.cors(nil))
	mux.Handle("GET /v1/realtime", handleRealtime(s))
	mux.Handle("GET /v1/models", handleModels(s))
	mux.Handle("GET /v1/models/{model}", handleModels(s))
	mux.Handle("POST /v1/realtime/calls", s.cors(handleCreateCall(s)))
	mux.Handle("OPTIONS /v1/realtime/calls", s.cors(nil))
	mux.Handle("POST /v1/realtime/calls/{id}/hangup", s.cors(handleHangupCall(s)))
	mux.Handle("OPTIONS /v1/realtime/calls/{id}/hangup", s.cors(nil))
	// Seed-compatible mint.
	mux.Handle("POST /api/voice/session", s.cors(handleMint(s, mintSeed)))
	mux.Handle("OPTIONS /api/voice/session", s.cors(nil))

	// Operator API: admin key, or an app key for what it minted.
	mux.Handle("GET /voicegate/v1/sessions", s.operator(handleListSessions(s)))
	mux.Handle("GET /voicegate/v1/sessions/{id}", s.operator(handleGetSession(s)))
	mux.Handle("DELETE /voicegate/v1/sessions/{id}", s.operator(handleRevokeSession(s)))
	mux.Handle("POST /voicegate/v1/users/{user}/revoke", s.operator(handleRevokeUser(s)))
	mux.Handle("GET /voicegate/v1/usage", s.operator(handleUsage(s)))
	mux.Handle("GET /voicegate/v1/audit", s.operator(handleAudit(s)))
	mux.Handle("POST /voicegate/v1/keys", s.adminOnly(handleCreateKey(s)))
	mux.Handle("GET /voicegate/v1/keys", s.adminOnly(handleListKeys(s)))
	mux.Handle("DELETE /voicegate/v1/keys/{id}", s.adminOnly(handleRevokeKey(s)))
	// A session token reads its own session (usage, cost, what is left).
	mux.Handle("GET /voicegate/v1/session", handleSelfSession(s))

	// Operations.
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(s))
	mux.Handle("GET /metrics", handleMetrics(s))

	// Demo page.
	mux.Handle("/", handleWeb(s))

	// Anything else under the API prefixes gets an OpenAI envelope.
	mux.Handle("/v1/", handleNotFound())
	mux.Handle("/voicegate/", handleNotFound())

	return recoverer(s.Logger, s.observe(mux))
}
