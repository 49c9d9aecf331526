package calls

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the calls' Prometheus collectors; no label carries a user,
// token, session or call id.
type Metrics struct {
	live  prometheus.Gauge
	calls *prometheus.CounterVec // outcome
}

// NewMetrics creates vg_live_calls and vg_calls_total{outcome} (placed,
// refused_upstream, upstream_unavailable, sideband_failed), registered on
// reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vg_live_calls", Help: "Live WebRTC calls governed by this instance."}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_calls_total", Help: "WebRTC calls asked for, by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.live, m.calls)
	}
	return m
}

func (m *Metrics) liveAdd(d float64) {
	if m != nil {
		m.live.Add(d)
	}
}

func (m *Metrics) outcome(o string) {
	if m != nil {
		m.calls.WithLabelValues(o).Inc()
	}
}
