package server

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/voicegate/voicegate/internal/store"
)

// maxLoggedPath bounds the request path in log lines and audit rows: the
// path is the client's, up to the server's header limit.
const maxLoggedPath = 256

// boundedPath is the request path as logs and the audit trail keep it: cut
// to maxLoggedPath bytes, control characters replaced.
func boundedPath(r *http.Request) string { return store.Sanitize(r.URL.Path, maxLoggedPath) }

// statusWriter records the status code; it keeps Hijack and Flush working
// for the WebSocket upgrade.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: response writer cannot hijack")
	}
	w.hijacked = true
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return hj.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs every request (method, route, path, status, duration —
// never headers or query, which may carry credentials) and counts it by
// route pattern.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := s.Now().Sub(start)
		s.metrics.request(route, sw.status, d.Seconds())
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		s.Logger.Log(r.Context(), level, "http request", "method", store.Sanitize(r.Method, 16), "route", route, "path", boundedPath(r),
			"status", sw.status, "duration_ms", d.Milliseconds(), "remote", r.RemoteAddr)
	})
}

// recoverer turns a handler panic into a 500 envelope and a log line with
// the stack, instead of a dropped connection.
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "handler panic", "path", boundedPath(r), "panic", v, "stack", string(debug.Stack()))
				writeError(w, r, log, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
