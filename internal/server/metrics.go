package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/token"
)

// metrics are the server's own Prometheus series; the relay registers its
// own on the same registry. No label carries a user, token or key.
type metrics struct {
	mints        *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_mints_total", Help: "Session token mints by tier and outcome.",
		}, []string{"tier", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_auth_failures_total", Help: "Refused authentications by endpoint kind and reason.",
		}, []string{"endpoint", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vg_http_request_seconds", Help: "HTTP request latency by route pattern (WebSocket sessions excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.mints, m.authFailures, m.requests, m.duration)
	return m
}

func (m *metrics) request(route string, code int, seconds float64) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if route != "GET /v1/realtime" {
		m.duration.WithLabelValues(route).Observe(seconds)
	}
}

// handleMetrics serves the registry; with a metrics token configured, only
// to a scraper that sends it as a Bearer token (401 otherwise, not audited:
// a scraper retries on its own schedule).
func handleMetrics(s *Server) http.Handler {
	h := promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if want := string(s.Config.MetricsToken); want != "" && !token.Equal(auth.BearerToken(r), want) {
			writeError(w, r, s.Logger, unauthorized("invalid_api_key", "GET /metrics needs the metrics token as a Bearer token."))
			return
		}
		h.ServeHTTP(w, r)
	})
}
