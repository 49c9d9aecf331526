package policy

import (
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// MintLimits are the "limits" a mint request may ask for; nil fields take
// the tier's value.
type MintLimits struct {
	MaxSessionSeconds  *int     `json:"max_session_seconds,omitempty"`
	IdleTimeoutSeconds *int     `json:"idle_timeout_seconds,omitempty"`
	BudgetUSD          *float64 `json:"budget_usd,omitempty"`
	MaxConcurrent      *int     `json:"max_concurrent,omitempty"`
}

// Narrow computes a session's limits from the tier and the mint's request.
// Each requested limit may only tighten the tier's (a tier value of 0 means
// unlimited, so any positive request tightens it); loosening or invalid
// values return a *FieldError with Param "limits.<field>". MaxConcurrent
// tightens the tier's per-user cap.
func (t Tier) Narrow(req MintLimits) (store.Limits, error) {
	sessionNano, err := USDToNano(t.Budget.SessionUSD)
	if err != nil {
		return store.Limits{}, fmt.Errorf("policy: tier %q session budget: %w", t.Name, err)
	}
	out := store.Limits{
		MaxSessionSeconds:  t.MaxSessionSeconds,
		IdleTimeoutSeconds: t.IdleTimeoutSeconds,
		BudgetNanoUSD:      sessionNano,
		MaxConcurrent:      t.Concurrency.PerUser,
	}
	if out.MaxSessionSeconds, err = narrowInt("limits.max_session_seconds", req.MaxSessionSeconds, t.MaxSessionSeconds); err != nil {
		return store.Limits{}, err
	}
	if out.IdleTimeoutSeconds, err = narrowInt("limits.idle_timeout_seconds", req.IdleTimeoutSeconds, t.IdleTimeoutSeconds); err != nil {
		return store.Limits{}, err
	}
	if out.MaxConcurrent, err = narrowInt("limits.max_concurrent", req.MaxConcurrent, t.Concurrency.PerUser); err != nil {
		return store.Limits{}, err
	}
	if req.BudgetUSD != nil {
		const param = "limits.budget_usd"
		n, err := USDToNano(*req.BudgetUSD)
		if err != nil || n == 0 {
			return store.Limits{}, fieldErr(param, CodeInvalidValue, "must be > 0")
		}
		if sessionNano != 0 && n > sessionNano {
			return store.Limits{}, fieldErr(param, CodeNotAllowed, "%g exceeds the tier's %g; a mint may only tighten its tier", *req.BudgetUSD, t.Budget.SessionUSD)
		}
		out.BudgetNanoUSD = n
	}
	return out, nil
}

// MaxLimit bounds every integer limit a mint may ask for (seconds, or a
// count), before it is converted to a duration: 18446744074 seconds would
// wrap to 0.29 s as a time.Duration.
const MaxLimit = 31 * 24 * 3600

func narrowInt(param string, req *int, tier int) (int, error) {
	if req == nil {
		return tier, nil
	}
	if *req < 1 || *req > MaxLimit {
		return 0, fieldErr(param, CodeInvalidValue, "must be between 1 and %d", MaxLimit)
	}
	if tier != 0 && *req > tier {
		return 0, fieldErr(param, CodeNotAllowed, "%d exceeds the tier's %d; a mint may only tighten its tier", *req, tier)
	}
	return *req, nil
}

// TokenTTL is the connect deadline of a token: the tier's default when
// seconds is nil, else seconds, which must be in OpenAI's 10–7200 range and
// within the tier's maximum (Param "expires_after.seconds").
func (t Tier) TokenTTL(seconds *int) (time.Duration, error) {
	if seconds == nil {
		return t.TokenTTLDefault, nil
	}
	const param = "expires_after.seconds"
	if *seconds < 10 || *seconds > 7200 {
		return 0, fieldErr(param, CodeInvalidValue, "must be between 10 and 7200")
	}
	d := time.Duration(*seconds) * time.Second
	if t.TokenTTLMax > 0 && d > t.TokenTTLMax {
		return 0, fieldErr(param, CodeNotAllowed, "%d exceeds the tier's maximum of %d", *seconds, int(t.TokenTTLMax/time.Second))
	}
	return d, nil
}
