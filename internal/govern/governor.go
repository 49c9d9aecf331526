package govern

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the zero-valued fields of Governor.
const (
	DefaultMaxOutputTokens = 4096
	DefaultMinOutputTokens = 20
	DefaultLeaseTTL        = 15 * time.Second
)

// Governor governs every session of one gateway instance. Its exported
// fields are set before first use and not changed after.
type Governor struct {
	// Store holds leases, rate limits, budgets, the ledger and the audit
	// trail; required.
	Store store.Store
	// Tiers by name; a session whose tier is unknown gets
	// policy.DefaultTier under its own name.
	Tiers map[string]policy.Tier
	// Prices values responses and reservations; nil means
	// meter.DefaultTable().
	Prices meter.Table
	// Metrics, when non-nil, counts refusals, reservations and metered
	// usage.
	Metrics *Metrics
	// Logger receives store failures; nil discards.
	Logger *slog.Logger
	// Instance names this instance in audit records and leases.
	Instance string
	// Now is the clock of budget windows, limits and records; nil means
	// time.Now.
	Now func() time.Time
	// LeaseTTL is how long a concurrency slot outlives its last renewal
	// (an instance that dies frees its slots within it); 0 means 15 s.
	LeaseTTL time.Duration
	// DefaultMaxOutputTokens bounds the reservation of a response whose
	// config allows "inf" output; 0 means 4096.
	DefaultMaxOutputTokens int
	// MinOutputTokens is the smallest output allowance worth starting a
	// response for; 0 means 20 (one second of audio).
	MinOutputTokens int
	// RefusalAuditBurst is how many refusals (and session updates) of one
	// connection are audited one by one before they are only counted;
	// 0 means 20.
	RefusalAuditBurst int
	// RefusalSummaryEvery is how often the counted refusals of one
	// connection are written as one refusal_summary row (also at Close);
	// 0 means one minute.
	RefusalSummaryEvery time.Duration

	// While the store is unreachable, live sessions are governed by this
	// process-local view of the budget accounts (local.go).
	local localBudgets
	once  sync.Once
	liveM sync.Mutex
	live  map[string]*Session // session id → its live governor (recover.go)
}

func (g *Governor) init() {
	g.once.Do(func() { g.live = map[string]*Session{} })
}

func (g *Governor) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Governor) prices() meter.Table {
	if g.Prices != nil {
		return g.Prices
	}
	return meter.DefaultTable()
}

func (g *Governor) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (g *Governor) leaseTTL() time.Duration {
	if g.LeaseTTL > 0 {
		return g.LeaseTTL
	}
	return DefaultLeaseTTL
}

func (g *Governor) defaultMaxOut() int {
	if g.DefaultMaxOutputTokens > 0 {
		return g.DefaultMaxOutputTokens
	}
	return DefaultMaxOutputTokens
}

func (g *Governor) minOut() int {
	if g.MinOutputTokens > 0 {
		return g.MinOutputTokens
	}
	return DefaultMinOutputTokens
}

// Tier returns the tier of name, or policy.DefaultTier under that name.
// It is the one place a tier name is resolved.
func (g *Governor) Tier(name string) policy.Tier {
	if t, ok := g.Tiers[name]; ok {
		return t
	}
	t := policy.DefaultTier()
	if name != "" {
		t.Name = name
	}
	return t
}

// UserKey is the identity of a user for limits, budgets and leases:
// users are namespaced by the app key that minted for them ("<app key
// id>/<user>"), so app A's "carol" never spends app B's "carol"'s limits.
// Sessions minted with the admin key or by a user's own login (no app key)
// share the gateway's own namespace: the bare user. The audit trail keeps
// the bare user next to the app key id.
func UserKey(appKeyID, user string) string {
	if appKeyID == "" {
		return user
	}
	return appKeyID + "/" + user
}

// Accounts are the budget accounts a cost of rec is charged to at now
// (UTC windows): session:<id>, user:day:<user key>:<YYYY-MM-DD>,
// user:month:<user key>:<YYYY-MM>, key:month:<appkey>:<YYYY-MM>, where the
// user key is UserKey's. Accounts without a limit are left out.
func Accounts(rec *store.Session, t policy.Tier, now time.Time) []store.BudgetAccount {
	now = now.UTC()
	_, day, month, keyMonth := t.Budget.BudgetNano()
	dayEnd := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	monthEnd := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	var out []store.BudgetAccount
	user := UserKey(rec.AppKeyID, rec.User)
	if rec.Limits.BudgetNanoUSD > 0 {
		out = append(out, store.BudgetAccount{Key: "session:" + rec.ID, LimitNano: rec.Limits.BudgetNanoUSD, ExpiresAt: rec.ExpiresAt.Add(24 * time.Hour)})
	}
	if rec.User != "" && day > 0 {
		out = append(out, store.BudgetAccount{Key: "user:day:" + user + ":" + now.Format("2006-01-02"), LimitNano: day, ExpiresAt: dayEnd.Add(24 * time.Hour)})
	}
	if rec.User != "" && month > 0 {
		out = append(out, store.BudgetAccount{Key: "user:month:" + user + ":" + now.Format("2006-01"), LimitNano: month, ExpiresAt: monthEnd.Add(24 * time.Hour)})
	}
	if rec.AppKeyID != "" && keyMonth > 0 {
		out = append(out, store.BudgetAccount{Key: "key:month:" + rec.AppKeyID + ":" + now.Format("2006-01"), LimitNano: keyMonth, ExpiresAt: monthEnd.Add(24 * time.Hour)})
	}
	return out
}

// accountKind is the non-identifying part of an account key, for audit
// details and logs.
func accountKind(key string) string {
	for i, n := 0, 0; i < len(key); i++ {
		if key[i] == ':' {
			n++
			if n == 2 || (n == 1 && key[:i] == "session") || (n == 1 && key[:i] == "key") {
				return key[:i]
			}
		}
	}
	return key
}

// audit appends one record; a failure is logged, never fatal.
func (g *Governor) audit(ctx context.Context, rec *store.Session, kind string, detail map[string]any) {
	e := store.AuditEntry{At: g.now(), Kind: kind, Instance: g.Instance, Detail: detail}
	if rec != nil {
		e.SessionID, e.User, e.AppKeyID, e.Tier = rec.ID, rec.User, rec.AppKeyID, rec.Tier
	}
	if err := g.Store.AppendAudit(ctx, e); err != nil {
		g.logger().Error("audit append failed", "kind", kind, "session_id", e.SessionID, "err", err)
	}
}

// pendingSpool is implemented by a store that spools writes while its
// backend is down (internal/store/spool).
type pendingSpool interface{ Pending() int }

// spoolEmpty reports whether no write of the store waits in its spool
// (always true for a store without one).
func (g *Governor) spoolEmpty() bool {
	p, ok := g.Store.(pendingSpool)
	return !ok || p.Pending() == 0
}
