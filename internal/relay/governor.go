package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// Defaults of the zero-valued fields of Governance.
const (
	DefaultMaxOutputTokens = 4096
	DefaultMinOutputTokens = 20
)

// In-stream limit codes of the governor.
const (
	CodeRateLimited       = "rate_limit_exceeded"
	CodeBudgetExceeded    = "budget_exceeded"
	CodeGovernUnavailable = "governance_unavailable"
)

// Governance builds the Governor of every session: the tier's event
// firewall, per-session GCRA limits on client events and responses, and
// reserve-then-settle budgets on the session, user and app-key accounts.
// Its Govern method is meant for Relay.Govern.
type Governance struct {
	// Store holds rate-limit state, budgets and audit; required.
	Store store.Store
	// Tiers by name; a session whose tier is unknown gets
	// policy.DefaultTier.
	Tiers map[string]policy.Tier
	// Prices values reservations; nil means meter.DefaultTable().
	Prices meter.Table
	// Metrics, when non-nil, counts refusals and reservations.
	Metrics *GovMetrics
	// Logger receives store failures; nil discards.
	Logger *slog.Logger
	// Instance names this instance in audit records.
	Instance string
	// Now is the clock of budget windows; nil means time.Now.
	Now func() time.Time
	// DefaultMaxOutputTokens bounds the reservation of a response whose
	// config allows "inf" output; it is pinned on the forwarded
	// response.create. 0 means 4096.
	DefaultMaxOutputTokens int
	// MinOutputTokens is the smallest output allowance worth starting a
	// response for; 0 means 20 (one second of audio).
	MinOutputTokens int

	// While the store is unreachable, live sessions are governed by these
	// process-local views (see local.go).
	local       localBudgets
	limiterOnce sync.Once
	limiter     *memory.Store // see localLimiter
}

// spoolEmpty reports whether no write of the store is waiting in its
// spool (always true for a store without one).
func (g *Governance) spoolEmpty() bool {
	p, ok := g.Store.(pendingSpool)
	return !ok || p.Pending() == 0
}

func (g *Governance) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Governance) prices() meter.Table {
	if g.Prices != nil {
		return g.Prices
	}
	return meter.DefaultTable()
}

func (g *Governance) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Tier returns the tier of name, or policy.DefaultTier.
func (g *Governance) Tier(name string) policy.Tier {
	if t, ok := g.Tiers[name]; ok {
		return t
	}
	t := policy.DefaultTier()
	if name != "" {
		t.Name = name
	}
	return t
}

// Accounts are the budget accounts a response of rec is charged to at now
// (UTC windows): session:<id>, user:day:<user>:<YYYY-MM-DD>,
// user:month:<user>:<YYYY-MM>, key:month:<appkey>:<YYYY-MM>. Accounts
// without a limit are left out.
func Accounts(rec *store.Session, t policy.Tier, now time.Time) []store.BudgetAccount {
	now = now.UTC()
	_, day, month, keyMonth := t.Budget.BudgetNano()
	dayEnd := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	monthEnd := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	var out []store.BudgetAccount
	if rec.Limits.BudgetNanoUSD > 0 {
		out = append(out, store.BudgetAccount{Key: "session:" + rec.ID, LimitNano: rec.Limits.BudgetNanoUSD, ExpiresAt: rec.ExpiresAt.Add(24 * time.Hour)})
	}
	if rec.User != "" && day > 0 {
		out = append(out, store.BudgetAccount{Key: "user:day:" + rec.User + ":" + now.Format("2006-01-02"), LimitNano: day, ExpiresAt: dayEnd.Add(24 * time.Hour)})
	}
	if rec.User != "" && month > 0 {
		out = append(out, store.BudgetAccount{Key: "user:month:" + rec.User + ":" + now.Format("2006-01"), LimitNano: month, ExpiresAt: monthEnd.Add(24 * time.Hour)})
	}
	if rec.AppKeyID != "" && keyMonth > 0 {
		out = append(out, store.BudgetAccount{Key: "key:month:" + rec.AppKeyID + ":" + now.Format("2006-01"), LimitNano: keyMonth, ExpiresAt: monthEnd.Add(24 * time.Hour)})
	}
	return out
}

// Govern returns the Governor of one session (for Relay.Govern).
func (g *Governance) Govern(rec *store.Session) Governor {
	t := g.Tier(rec.Tier)
	gv := &governor{
		g: g, rec: rec, tier: t,
		fw:     &policy.Firewall{Tier: t, Pinned: rec.Config},
		close:  func(string, string) {},
		byResp: map[string]reservation{},
		base:   len(rec.Config)/4 + 1,
	}
	gv.sessionMaxOut = configMaxOutput(rec.Config)
	gv.vad = turnDetectionOn(rec.Config)
	return gv
}

// reservation is one held budget grant and the input tokens it assumed.
type reservation struct {
	id    string
	added int // governor.added when it was made
	// local is set for a grant made from the local view while the store
	// was unreachable: the store never saw it, so its cost is charged,
	// not settled.
	local    bool
	granted  int64
	accounts []store.BudgetAccount
	// maxOut bounds the response's output tokens: once it is done they
	// are input of every later response.
	maxOut int
}

// governor is the Governor of one session.
type governor struct {
	g     *Governance
	rec   *store.Session
	tier  policy.Tier
	fw    *policy.Firewall
	close func(reason, message string)

	mu            sync.Mutex
	seq           int
	pending       []reservation          // reserved by response.create, not yet created upstream
	byResp        map[string]reservation // response id → its reservation
	base          int                    // input tokens of the context at the last settled response (upper bound)
	baseAdded     int                    // added when base was measured
	added         int                    // upper bound of input tokens the client added so far
	sessionMaxOut int                    // the session's max_output_tokens; 0 = inf
	vad           bool                   // server turn detection is on
	stand         reservation            // the standing reservation for a server-VAD response
	pinnedOut     int                    // max_output_tokens the governor pinned upstream (0 = none)
	seeded        bool                   // the accounts were read once (seed)
	finishing     map[string]int         // response id → response.done events read upstream, not yet metered
	settled       chan struct{}          // closed when a finishing response is metered (settle.go)
	upstream      func(ctx context.Context, frame []byte) error
}

// Bind implements Binder.
func (v *governor) Bind(b Binding) {
	v.fw.Beta = b.Beta
	v.close = b.Close
	v.mu.Lock()
	v.upstream = b.SendUpstream
	v.mu.Unlock()
}

// WarnLead implements Warner with the tier's lead.
func (v *governor) WarnLead(maxSeconds int) time.Duration { return v.tier.WarnLead(maxSeconds) }

// ClientEvent implements Governor: firewall, event rate, then for
// response.create the response rate and the budget reservation.
func (v *governor) ClientEvent(ctx context.Context, eventType string, frame []byte) (forward, refusal []byte) {
	v.seed(ctx)
	d := v.fw.Inspect(frame)
	switch d.Action {
	case policy.Refuse:
		v.g.Metrics.Refused(d.Code, v.tier.Name, v.rec.Model)
		v.audit(ctx, "refusal", map[string]any{"code": d.Code, "event_type": d.Type, "param": d.Param})
		return nil, d.ErrorEvent(realtime.NewID("event_"))
	case policy.Rewrite:
		frame = d.Frame
	}
	if n := v.tier.Rates.EventsPerSecond; n > 0 {
		if ref := v.allow(ctx, "rl:events:"+v.rec.ID, store.PerSecond(n), "events_per_second", d.EventID); ref != nil {
			return nil, ref
		}
	}
	switch d.Type {
	case realtime.TypeSessionUpdate, "transcription_session.update":
		v.audit(ctx, "session_update", map[string]any{"changed_fields": d.ChangedFields})
		// The client's own max_output_tokens or turn detection replaces
		// what the governor pinned: the next audio pins again.
		m := updateMaxOutput(frame)
		on, set := updateTurnDetection(frame)
		v.mu.Lock()
		if m >= 0 {
			v.sessionMaxOut = m
			v.pinnedOut = -1
		}
		if set {
			v.vad = on
		}
		v.mu.Unlock()
	case realtime.TypeResponseCreate:
		if n := v.tier.Rates.ResponsesPerMinute; n > 0 {
			if ref := v.allow(ctx, "rl:responses:"+v.rec.ID, store.PerMinute(n), "responses_per_minute", d.EventID); ref != nil {
				return nil, ref
			}
		}
		v.addInput(frame)
		return v.reserve(ctx, frame, d.EventID)
	}
	if isAudio(d.Type) {
		if ref := v.standing(ctx, d.EventID); ref != nil {
			return nil, ref
		}
	}
	v.addInput(frame)
	return frame, nil
}

// addInput raises the input estimate by an upper bound of what frame adds
// to the context: text is at most one token per 4 bytes of JSON, audio (pcm
// 24 kHz base64) at most 10 tokens per second.
func (v *governor) addInput(frame []byte) {
	n := len(frame)/4 + 1
	if t, _ := realtime.EventType(frame); t == "input_audio_buffer.append" {
		n = len(frame)/3200 + 1
	}
	v.mu.Lock()
	v.added += n
	v.mu.Unlock()
}

// allow applies one GCRA limit; the refusal is an in-stream
// rate_limit_exceeded echoing eventID. While the store is unreachable the
// process-local limiter decides; any other store failure refuses (fail
// closed).
func (v *governor) allow(ctx context.Context, key string, l store.Limit, limit, eventID string) []byte {
	res, err := v.g.Store.Allow(ctx, key, l)
	if errors.Is(err, store.ErrUnavailable) {
		// The keys are per session, so the local decision is exact.
		res, err = v.g.localLimiter().Allow(ctx, key, l)
	}
	if err != nil {
		v.g.logger().Error("rate limit check failed", "session_id", v.rec.ID, "limit", limit, "err", err)
		return realtime.ErrorEvent(CodeGovernUnavailable, "the gateway cannot check its limits right now", eventID)
	}
	if res.Allowed {
		return nil
	}
	v.g.Metrics.Refused(limit, v.tier.Name, v.rec.Model)
	v.audit(ctx, "limit", map[string]any{"limit": limit, "retry_after_ms": res.RetryAfter.Milliseconds()})
	return realtime.ErrorEvent(CodeRateLimited,
		fmt.Sprintf("rate limit %s exceeded; retry after %.1f s", limit, res.RetryAfter.Seconds()), eventID)
}

func (v *governor) audit(ctx context.Context, kind string, detail map[string]any) {
	err := v.g.Store.AppendAudit(ctx, store.AuditEntry{
		At: v.g.now(), Kind: kind, SessionID: v.rec.ID, User: v.rec.User,
		AppKeyID: v.rec.AppKeyID, Tier: v.rec.Tier, Instance: v.g.Instance, Detail: detail,
	})
	if err != nil {
		v.g.logger().Error("audit append failed", "kind", kind, "session_id", v.rec.ID, "err", err)
	}
}

// configMaxOutput reads max_output_tokens of a GA session config: its
// number, or 0 for "inf" or absent.
func configMaxOutput(cfg json.RawMessage) int {
	var c struct {
		MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
	}
	if json.Unmarshal(cfg, &c) != nil {
		return 0
	}
	return max(maxTokensValue(c.MaxOutputTokens), 0)
}

// updateMaxOutput reads session.max_output_tokens of a session.update (GA
// or the beta max_response_output_tokens): the number, 0 for "inf", -1
// when absent.
func updateMaxOutput(frame []byte) int {
	var ev struct {
		Session map[string]json.RawMessage `json:"session"`
	}
	if json.Unmarshal(frame, &ev) != nil {
		return -1
	}
	for _, k := range []string{"max_output_tokens", "max_response_output_tokens"} {
		if raw, ok := ev.Session[k]; ok {
			return max(maxTokensValue(raw), 0)
		}
	}
	return -1
}

// maxTokensValue is a max_output_tokens value: n, 0 for "inf", -1 when
// absent or malformed.
func maxTokensValue(raw json.RawMessage) int {
	if len(raw) == 0 {
		return -1
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n > 0 {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s == "inf" {
		return 0
	}
	return -1
}
