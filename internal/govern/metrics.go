package govern

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the governance collectors. Labels are the limit, tier and
// model only, never a user, token or session id.
type Metrics struct {
	refusals   *prometheus.CounterVec // limit, tier, model
	reserved   *prometheus.CounterVec // tier, model
	clamped    *prometheus.CounterVec // tier, model
	local      *prometheus.CounterVec // tier, model
	responses  *prometheus.CounterVec // model, status
	cost       *prometheus.CounterVec // model, tier
	unreserved *prometheus.CounterVec // tier, model
	errors     *prometheus.CounterVec // code
}

// NewMetrics creates vg_limit_refusals_total{limit,tier,model},
// vg_budget_reserved_nanousd_total{tier,model},
// vg_budget_clamped_responses_total{tier,model},
// vg_budget_local_grants_total{tier,model},
// vg_budget_unreserved_responses_total{tier,model},
// vg_responses_total{model,status}, vg_cost_nanousd_total{model,tier} and
// vg_metering_errors_total{code}, registered on reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		refusals:   cv("vg_limit_refusals_total", "Events, responses and sessions refused by a governing limit.", "limit", "tier", "model"),
		reserved:   cv("vg_budget_reserved_nanousd_total", "Budget reserved for responses before they ran, in nano-dollars.", "tier", "model"),
		clamped:    cv("vg_budget_clamped_responses_total", "Responses whose max_output_tokens was lowered to fit the budget.", "tier", "model"),
		local:      cv("vg_budget_local_grants_total", "Responses granted budget from the instance's local accounting while the store was unreachable.", "tier", "model"),
		unreserved: cv("vg_budget_unreserved_responses_total", "Responses that started upstream with no reservation (charged when done).", "tier", "model"),
		responses:  cv("vg_responses_total", "Metered upstream responses by model and status.", "model", "status"),
		cost:       cv("vg_cost_nanousd_total", "Metered cost in nano-dollars by model and tier.", "model", "tier"),
		errors:     cv("vg_metering_errors_total", "Metering and governance failures by code.", "code"),
	}
	if reg != nil {
		reg.MustRegister(m.refusals, m.reserved, m.clamped, m.local, m.unreserved, m.responses, m.cost, m.errors)
	}
	return m
}

// The helpers below accept a nil *Metrics so call sites stay unconditional.

// Refused counts one refusal by limit.
func (m *Metrics) Refused(limit, tier, model string) {
	if m != nil {
		m.refusals.WithLabelValues(limit, tier, model).Inc()
	}
}

func (m *Metrics) reservedAdd(tier, model string, n int64) {
	if m != nil && n > 0 {
		m.reserved.WithLabelValues(tier, model).Add(float64(n))
	}
}

func (m *Metrics) clamp(tier, model string) {
	if m != nil {
		m.clamped.WithLabelValues(tier, model).Inc()
	}
}

func (m *Metrics) localGrant(tier, model string) {
	if m != nil {
		m.local.WithLabelValues(tier, model).Inc()
	}
}

func (m *Metrics) unreservedResponse(tier, model string) {
	if m != nil {
		m.unreserved.WithLabelValues(tier, model).Inc()
	}
}

func (m *Metrics) metered(model, tier, status string, cost int64, response bool) {
	if m == nil {
		return
	}
	if response {
		m.responses.WithLabelValues(model, status).Inc()
	}
	m.cost.WithLabelValues(model, tier).Add(float64(cost))
}

func (m *Metrics) error(code string) {
	if m != nil {
		m.errors.WithLabelValues(code).Inc()
	}
}
