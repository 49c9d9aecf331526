package relay

import "github.com/prometheus/client_golang/prometheus"

// GovMetrics are the governance collectors. Labels are the limit, tier and
// model only, never a user, token or session id.
type GovMetrics struct {
	refusals *prometheus.CounterVec // limit, tier, model
	reserved *prometheus.CounterVec // tier, model
	clamped  *prometheus.CounterVec // tier, model
	local    *prometheus.CounterVec // tier, model
}

// NewGovMetrics creates vg_limit_refusals_total{limit,tier,model},
// vg_budget_reserved_nanousd_total{tier,model},
// vg_budget_clamped_responses_total{tier,model} and
// vg_budget_local_grants_total{tier,model}, registered on reg unless it is
// nil.
func NewGovMetrics(reg prometheus.Registerer) *GovMetrics {
	m := &GovMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_limit_refusals_total", Help: "Events, responses and sessions refused by a governing limit.",
		}, []string{"limit", "tier", "model"}),
		reserved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_budget_reserved_nanousd_total", Help: "Budget reserved for responses before they ran, in nano-dollars.",
		}, []string{"tier", "model"}),
		clamped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_budget_clamped_responses_total", Help: "Responses whose max_output_tokens was lowered to fit the budget.",
		}, []string{"tier", "model"}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vg_budget_local_grants_total", Help: "Responses granted budget from the instance's local accounting while the store was unreachable.",
		}, []string{"tier", "model"}),
	}
	if reg != nil {
		reg.MustRegister(m.refusals, m.reserved, m.clamped, m.local)
	}
	return m
}

// Refused counts one refusal by limit (nil-safe).
func (m *GovMetrics) Refused(limit, tier, model string) {
	if m != nil {
		m.refusals.WithLabelValues(limit, tier, model).Inc()
	}
}

func (m *GovMetrics) reservedAdd(tier, model string, n int64) {
	if m != nil && n > 0 {
		m.reserved.WithLabelValues(tier, model).Add(float64(n))
	}
}

func (m *GovMetrics) clamp(tier, model string) {
	if m != nil {
		m.clamped.WithLabelValues(tier, model).Inc()
	}
}

func (m *GovMetrics) localGrant(tier, model string) {
	if m != nil {
		m.local.WithLabelValues(tier, model).Inc()
	}
}
