package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the relay's Prometheus collectors. Labels never carry a
// user, token or session id.
type Metrics struct {
	live   prometheus.Gauge
	frames *prometheus.CounterVec // direction
	bytes  *prometheus.CounterVec // direction
	dial   prometheus.Histogram
	errors *prometheus.CounterVec // code
}

// Directions of relayed frames.
const (
	dirClient   = "client_to_upstream"
	dirUpstream = "upstream_to_client"
)

// NewMetrics creates the relay's collectors and registers them on reg (nil
// reg: unregistered, still usable): vg_live_sessions,
// vg_frames_total{direction}, vg_bytes_total{direction},
// vg_upstream_dial_seconds, vg_errors_total{code}. What sessions cost is
// counted by the governor (govern.Metrics).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vg_live_sessions", Help: "Live relayed sessions on this instance.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_frames_total", Help: "WebSocket frames relayed, by direction.",
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_bytes_total", Help: "Payload bytes relayed, by direction.",
		}, []string{"direction"}),
		dial: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vg_upstream_dial_seconds", Help: "Upstream WebSocket dial latency.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_errors_total", Help: "Relay errors and session endings by code.",
		}, []string{"code"}),
	}
	for _, d := range []string{dirClient, dirUpstream} {
		m.frames.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	if reg != nil {
		reg.MustRegister(m.live, m.frames, m.bytes, m.dial, m.errors)
	}
	return m
}

// The helpers below accept a nil *Metrics so call sites stay unconditional.

func (m *Metrics) liveAdd(d float64) {
	if m != nil {
		m.live.Add(d)
	}
}

func (m *Metrics) frame(dir string, n int) {
	if m != nil {
		m.frames.WithLabelValues(dir).Inc()
		m.bytes.WithLabelValues(dir).Add(float64(n))
	}
}

func (m *Metrics) dialed(seconds float64) {
	if m != nil {
		m.dial.Observe(seconds)
	}
}

func (m *Metrics) error(code string) {
	if m != nil {
		m.errors.WithLabelValues(code).Inc()
	}
}
