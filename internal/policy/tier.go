// Package policy holds voicegate's governing rules as pure decisions: the
// tier model, how a mint narrows its tier's limits, validation of the
// session config pinned at mint, and the firewall every client event passes
// before it is relayed upstream.
//
// Nothing here does I/O or keeps time: callers pass what a decision needs
// and act on the answer.
package policy

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"
)

// Budget is money per scope in US dollars; 0 means unlimited.
type Budget struct {
	SessionUSD     float64
	UserDayUSD     float64
	UserMonthUSD   float64
	AppKeyMonthUSD float64
}

// Concurrency caps live sessions per scope; 0 means unlimited.
type Concurrency struct {
	PerUser     int
	PerAppKey   int
	PerInstance int
}

// Rates are GCRA rate limits; 0 means unlimited.
type Rates struct {
	MintsPerUserPerMinute    int
	MintsPerAppKeyPerMinute  int
	ConnectsPerUserPerMinute int
	EventsPerSecond          int // client events per second per session
	ResponsesPerMinute       int // responses per minute per session
}

// Tier is a named bundle of limits and permissions. Mints name a tier and
// may only tighten it.
type Tier struct {
	Name string

	// TokenTTLDefault is the connect deadline of a token minted without
	// expires_after; TokenTTLMax bounds the one asked for.
	TokenTTLDefault, TokenTTLMax time.Duration
	// MaxSessionSeconds bounds a live session (0 = unlimited, i.e. the
	// upstream's own 60 minutes); IdleTimeoutSeconds ends a session whose
	// client stays silent that long (0 = never).
	MaxSessionSeconds, IdleTimeoutSeconds int

	Budget      Budget
	Concurrency Concurrency
	Rates       Rates

	// AllowedModels and AllowedVoices restrict the session config; empty
	// allows any. The first allowed model is the default model.
	AllowedModels, AllowedVoices []string
	// LockedFields are dotted GA session paths a client may not change by
	// session.update or override in response.create: a value the mint set
	// is pinned, an unset one keeps the upstream default ("tracing",
	// "audio.output.voice", …). A locked object also locks everything
	// inside it. Mint-set PinnableFields are pinned whatever this says.
	LockedFields []string
	// AllowedEvents are the client event types relayed upstream.
	AllowedEvents []string
	// Transcription allows minting sessions of type "transcription"
	// (ValidateSessionConfig refuses them otherwise).
	Transcription bool
	// MaxEventBytes bounds one client event (appends up to 15 MiB are legal).
	MaxEventBytes int
	// WarnBeforeExpiry is how long before max_session_seconds the client
	// gets a session_expiring warning; see WarnLead.
	WarnBeforeExpiry time.Duration
}

// DefaultModel is the model of a session config that names none and of a
// tier that allows any.
const DefaultModel = "gpt-realtime"

// KnownModels are the realtime models the default tier allows.
var KnownModels = []string{
	"gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-1.5", "gpt-realtime-mini",
	"gpt-realtime-2", "gpt-realtime-2.1", "gpt-realtime-2.1-mini",
	"gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview",
}

// KnownVoices are OpenAI's built-in realtime voices.
var KnownVoices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}

// ClientEvents are every client event type of the Realtime API: the GA
// ones (protocol §4.2) and the beta-only transcription_session.update.
var ClientEvents = []string{
	"session.update",
	"input_audio_buffer.append",
	"input_audio_buffer.commit",
	"input_audio_buffer.clear",
	"output_audio_buffer.clear",
	"conversation.item.create",
	"conversation.item.retrieve",
	"conversation.item.truncate",
	"conversation.item.delete",
	"response.create",
	"response.cancel",
	"transcription_session.update",
}

// PinnableFields are what decides what the model does: when a mint sets
// one, its value is pinned — it wins over a client's session.update for
// the session's life. Other fields a mint sets (voice, audio formats, turn
// detection, transcription) are defaults the client may change, unless
// the tier locks them.
var PinnableFields = []string{"model", "instructions", "tools", "tool_choice", "prompt", "tracing"}

// DefaultLockedFields are locked unless a tier says otherwise: a client
// may not change them even when the mint left them unset (they keep the
// upstream default). tracing decides what is stored on the operator's
// OpenAI account; prompt swaps in a stored prompt.
var DefaultLockedFields = []string{"prompt", "tracing"}

// DefaultMaxEventBytes leaves room for a 15 MiB input_audio_buffer.append.
const DefaultMaxEventBytes = 16 << 20

// DefaultTier is the tier used when the configuration names none.
func DefaultTier() Tier {
	return Tier{
		Name:               "default",
		TokenTTLDefault:    10 * time.Minute,
		TokenTTLMax:        time.Hour,
		MaxSessionSeconds:  1800,
		IdleTimeoutSeconds: 120,
		Budget:             Budget{SessionUSD: 1, UserDayUSD: 5, UserMonthUSD: 50},
		Concurrency:        Concurrency{PerUser: 2},
		Rates: Rates{
			MintsPerUserPerMinute:    10,
			MintsPerAppKeyPerMinute:  600,
			ConnectsPerUserPerMinute: 20,
			EventsPerSecond:          200,
			ResponsesPerMinute:       30,
		},
		AllowedModels:    slices.Clone(KnownModels),
		AllowedVoices:    slices.Clone(KnownVoices),
		LockedFields:     slices.Clone(DefaultLockedFields),
		AllowedEvents:    slices.Clone(ClientEvents),
		MaxEventBytes:    DefaultMaxEventBytes,
		WarnBeforeExpiry: 30 * time.Second,
	}
}

// Validate reports the first inconsistency of t, as "field: problem" with
// the YAML field name.
func (t Tier) Validate() error {
	check := []struct {
		ok    bool
		field string
		msg   string
	}{
		{t.TokenTTLDefault >= 10*time.Second && t.TokenTTLDefault <= 7200*time.Second, "token_ttl_default_seconds", "must be between 10 and 7200"},
		{t.TokenTTLMax >= 10*time.Second && t.TokenTTLMax <= 7200*time.Second, "token_ttl_max_seconds", "must be between 10 and 7200"},
		{t.TokenTTLDefault <= t.TokenTTLMax, "token_ttl_default_seconds", "must be ≤ token_ttl_max_seconds"},
		{t.MaxSessionSeconds >= 0, "max_session_seconds", "must be ≥ 0"},
		{t.IdleTimeoutSeconds >= 0, "idle_timeout_seconds", "must be ≥ 0"},
		{validUSD(t.Budget.SessionUSD), "budget.session_usd", "must be ≥ 0"},
		{validUSD(t.Budget.UserDayUSD), "budget.user_day_usd", "must be ≥ 0"},
		{validUSD(t.Budget.UserMonthUSD), "budget.user_month_usd", "must be ≥ 0"},
		{validUSD(t.Budget.AppKeyMonthUSD), "budget.app_key_month_usd", "must be ≥ 0"},
		{t.Concurrency.PerUser >= 0, "concurrency.per_user", "must be ≥ 0"},
		{t.Concurrency.PerAppKey >= 0, "concurrency.per_app_key", "must be ≥ 0"},
		{t.Concurrency.PerInstance >= 0, "concurrency.per_instance", "must be ≥ 0"},
		{t.Rates.MintsPerUserPerMinute >= 0, "rates.mints_per_user_per_minute", "must be ≥ 0"},
		{t.Rates.MintsPerAppKeyPerMinute >= 0, "rates.mints_per_app_key_per_minute", "must be ≥ 0"},
		{t.Rates.ConnectsPerUserPerMinute >= 0, "rates.connects_per_user_per_minute", "must be ≥ 0"},
		{t.Rates.EventsPerSecond >= 0, "rates.events_per_second", "must be ≥ 0"},
		{t.Rates.ResponsesPerMinute >= 0, "rates.responses_per_minute", "must be ≥ 0"},
		{t.MaxEventBytes >= 1024, "max_event_bytes", "must be ≥ 1024"},
		{t.WarnBeforeExpiry >= 0, "warn_before_expiry_seconds", "must be ≥ 0"},
		{len(t.AllowedEvents) > 0, "allowed_events", "must not be empty"},
	}
	for _, c := range check {
		if !c.ok {
			return fmt.Errorf("%s: %s", c.field, c.msg)
		}
	}
	for i, ev := range t.AllowedEvents {
		if !slices.Contains(ClientEvents, ev) {
			return fmt.Errorf("allowed_events[%d]: unknown client event type %q", i, ev)
		}
	}
	for i, f := range t.LockedFields {
		if !knownSessionPath(f) {
			return fmt.Errorf("locked_fields[%d]: unknown session field %q", i, f)
		}
	}
	return nil
}

// WarnLead is how long before the end of a session of maxSeconds the
// session_expiring warning goes out: WarnBeforeExpiry, but at most a third
// of a short session.
func (t Tier) WarnLead(maxSeconds int) time.Duration {
	if maxSeconds <= 0 {
		return 0
	}
	return min(t.WarnBeforeExpiry, time.Duration(maxSeconds)*time.Second/3)
}

// BudgetNano converts the budgets to nano-dollars (see USDToNano); an
// invalid amount, which Validate refuses, converts to 0 (unlimited).
func (b Budget) BudgetNano() (session, userDay, userMonth, appKeyMonth int64) {
	session, _ = USDToNano(b.SessionUSD)
	userDay, _ = USDToNano(b.UserDayUSD)
	userMonth, _ = USDToNano(b.UserMonthUSD)
	appKeyMonth, _ = USDToNano(b.AppKeyMonthUSD)
	return
}

func validUSD(v float64) bool { _, err := USDToNano(v); return err == nil }

// USDToNano converts dollars to integer nano-dollars exactly: the shortest
// decimal that round-trips v (what the operator wrote, "0.1") is scaled by
// 10⁹ with rational arithmetic, so 0.1 is 100000000, not 99999999.
// Fractions of a nano-dollar are rounded half away from zero.
func USDToNano(v float64) (int64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, errors.New("must be ≥ 0")
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	if !ok {
		return 0, errors.New("not a number")
	}
	r.Mul(r, big.NewRat(1_000_000_000, 1))
	n := new(big.Int).Mul(r.Num(), big.NewInt(2))
	n.Add(n, r.Denom())
	n.Quo(n, new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	if !n.IsInt64() {
		return 0, errors.New("too large")
	}
	return n.Int64(), nil
}
