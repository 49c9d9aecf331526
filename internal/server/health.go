package server

import (
	"context"
	"net/http"
	"time"
)

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz is 503 while the store cannot be used: a load balancer then
// sends new sessions elsewhere (fail closed).
func handleReadyz(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Store.Ping(ctx); err != nil {
			s.Logger.WarnContext(r.Context(), "readiness: store ping failed", "err", err)
			encode(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "store"})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// handleWeb serves the embedded demo page (GET and HEAD only).
func handleWeb(s *Server) http.Handler {
	h := webFiles(s)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, s.Logger, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed", Message: "Method not allowed."})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func webFiles(s *Server) http.Handler {
	if s.Web == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("voicegate gateway. Mint tokens at POST /v1/realtime/client_secrets; connect at GET /v1/realtime.\n"))
		})
	}
	return http.FileServerFS(s.Web)
}
