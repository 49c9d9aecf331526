package govern

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/voicegate/voicegate/internal/meter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/store/spool"
)

// flakyStore is a memory store that can be taken down: while down, every
// call a live session makes fails with store.ErrUnavailable, as the redis
// backend's do while Redis is unreachable.
type flakyStore struct {
	*memory.Store
	down     atomic.Bool
	reserves atomic.Int64 // Reserve calls answered by the backend
}

func (f *flakyStore) fail(op string) error {
	if f.down.Load() {
		return fmt.Errorf("flaky %s: %w", op, store.ErrUnavailable)
	}
	return nil
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if err := f.fail("ping"); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

func (f *flakyStore) Reserve(ctx context.Context, r store.Reservation) (store.ReserveResult, error) {
	if err := f.fail("reserve"); err != nil {
		return store.ReserveResult{}, err
	}
	f.reserves.Add(1)
	return f.Store.Reserve(ctx, r)
}

func (f *flakyStore) Settle(ctx context.Context, id string, actual int64) error {
	if err := f.fail("settle"); err != nil {
		return err
	}
	return f.Store.Settle(ctx, id, actual)
}

func (f *flakyStore) Charge(ctx context.Context, a []store.BudgetAccount, amount int64) error {
	if err := f.fail("charge"); err != nil {
		return err
	}
	return f.Store.Charge(ctx, a, amount)
}

func (f *flakyStore) Spent(ctx context.Context, key string) (int64, int64, error) {
	if err := f.fail("spent"); err != nil {
		return 0, 0, err
	}
	return f.Store.Spent(ctx, key)
}

func (f *flakyStore) Allow(ctx context.Context, key string, l store.Limit) (store.LimitResult, error) {
	if err := f.fail("allow"); err != nil {
		return store.LimitResult{}, err
	}
	return f.Store.Allow(ctx, key, l)
}

func (f *flakyStore) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if err := f.fail("audit"); err != nil {
		return err
	}
	return f.Store.AppendAudit(ctx, e)
}

func (f *flakyStore) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	if err := f.fail("record usage"); err != nil {
		return false, err
	}
	return f.Store.RecordUsage(ctx, e)
}

// outageGov is a Governance over a flaky memory store behind the real
// durability spool, as cmd/voicegate wires a redis store.
func outageGov(t *testing.T, tier policy.Tier) (*Governor, *flakyStore, *spool.Spool) {
	return outageGovReplay(t, tier, 5*time.Millisecond)
}

// outageGovReplay is outageGov with the spool replaying every interval.
func outageGovReplay(t *testing.T, tier policy.Tier, interval time.Duration) (*Governor, *flakyStore, *spool.Spool) {
	t.Helper()
	fs := &flakyStore{Store: memory.New()}
	sp, err := spool.New(fs, t.TempDir(), spool.WithInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return &Governor{Store: sp, Tiers: map[string]policy.Tier{tier.Name: tier}, Metrics: NewMetrics(nil), Prices: unitPrices()}, fs, sp
}

// budgetTier is a tier with only a user day budget of usd.
func budgetTier(usd float64) policy.Tier {
	t := policy.DefaultTier()
	t.Name = "outage"
	t.Budget = policy.Budget{UserDayUSD: usd}
	t.Rates = policy.Rates{EventsPerSecond: 100, ResponsesPerMinute: 600}
	return t
}

// unitPrices prices every token of gpt-realtime at one nano-dollar, so a
// response's cost is its token count.
func unitPrices() meter.Table {
	const one = 1_000_000 // nano-dollars per 1M tokens
	return meter.Table{"gpt-realtime": {TextIn: one, TextCached: one, TextOut: one, AudioIn: one, AudioCached: one, AudioOut: one}}
}

// govSession is one governed session driven without sockets.
type govSession struct {
	t      *testing.T
	gv     *Session
	closed atomic.Value // close reason
	seq    int
}

func newGovSession(t *testing.T, g *Governor, id, user string) *govSession {
	t.Helper()
	rec := &store.Session{ID: id, User: user, Tier: "outage", Model: "gpt-realtime",
		Config:    json.RawMessage(`{"type":"realtime","model":"gpt-realtime","audio":{"input":{"turn_detection":null}}}`),
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), State: store.StateLive}
	s := &govSession{t: t}
	s.gv = g.Open(rec, Hooks{
		End:      func(r *Refusal) { s.closed.Store(r.Code) },
		Upstream: func(context.Context, []byte) error { return nil },
	})
	return s
}

// create sends a response.create; it returns the error code of a refusal
// ("" when forwarded) and the forwarded max_output_tokens.
func (s *govSession) create(ctx context.Context) (code string, maxOut int) {
	s.t.Helper()
	fwd, ref := s.gv.Client(ctx, []byte(`{"type":"response.create","event_id":"evt_1","response":{"max_output_tokens":200}}`))
	if ref != nil {
		var ev struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal(ref, &ev)
		return ev.Error.Code, 0
	}
	var ev struct {
		Response struct {
			MaxOutputTokens int `json:"max_output_tokens"`
		} `json:"response"`
	}
	if err := json.Unmarshal(fwd, &ev); err != nil {
		s.t.Fatalf("forwarded %s: %v", fwd, err)
	}
	return "", ev.Response.MaxOutputTokens
}

// run starts and finishes the response create reserved for; it costs cost
// (output text tokens at unitPrices).
func (s *govSession) run(ctx context.Context, sessionID string, cost int64) string {
	s.seq++
	rid := fmt.Sprintf("resp_%s_%d", sessionID, s.seq)
	s.gv.Upstream(ctx, "response.created", []byte(`{"type":"response.created","response":{"id":"`+rid+`","conversation_id":"conv_1","status":"in_progress"}}`))
	done := fmt.Sprintf(`{"type":"response.done","response":{"id":%q,"conversation_id":"conv_1","status":"completed","usage":{"total_tokens":%d,"input_tokens":0,"output_tokens":%d,"output_token_details":{"text_tokens":%d}}}}`, rid, cost, cost, cost)
	s.gv.Upstream(ctx, "response.done", []byte(done))
	return rid
}

func waitSpool(t *testing.T, sp *spool.Spool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sp.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d operations", sp.Pending())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func userDayKey(user string) string {
	return "user:day:" + user + ":" + time.Now().UTC().Format("2006-01-02")
}

// TestOutageLocalGrantsChargedOnce: responses keep being granted while the
// store is down; a reservation made before the outage settles (spooled),
// local grants are charged (spooled), and after the store returns the
// account's spend is exactly the sum of the costs, with nothing reserved.
func TestOutageLocalGrantsChargedOnce(t *testing.T) {
	ctx := t.Context()
	g, fs, sp := outageGov(t, budgetTier(5))
	s := newGovSession(t, g, "vgs_a", "ann")

	var want int64
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("shared reservation refused: %s", code)
	}
	s.run(ctx, "vgs_a", 1000)
	want += 1000

	// A reservation made before the outage, done during it.
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("second shared reservation refused: %s", code)
	}
	fs.down.Store(true)
	s.run(ctx, "vgs_a", 2000)
	want += 2000

	// Responses during the outage: granted locally.
	before := fs.reserves.Load()
	for i := range 3 {
		if code, _ := s.create(ctx); code != "" {
			t.Fatalf("response %d during the outage refused: %s", i, code)
		}
		s.run(ctx, "vgs_a", 3000)
		want += 3000
	}
	// A local grant never run: released locally at the end.
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("last response during the outage refused: %s", code)
	}
	if fs.reserves.Load() != before {
		t.Fatal("a reservation reached the store while it was down")
	}
	if n := metricValue(g.Metrics.local.WithLabelValues("outage", "gpt-realtime")); n != 4 {
		t.Fatalf("vg_budget_local_grants_total = %v, want 4", n)
	}
	if sp.Pending() == 0 {
		t.Fatal("nothing spooled during the outage")
	}

	fs.down.Store(false)
	waitSpool(t, sp)
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("shared reservation after the outage refused: %s", code)
	}
	s.run(ctx, "vgs_a", 500)
	want += 500
	s.gv.Close(ctx)
	waitSpool(t, sp)

	spent, reserved, err := fs.Store.Spent(ctx, userDayKey("ann"))
	if err != nil {
		t.Fatal(err)
	}
	if spent != want || reserved != 0 {
		t.Fatalf("account spent %d reserved %d, want spent %d (sum of costs) reserved 0", spent, reserved, want)
	}
	if r, ok := s.closed.Load().(string); ok {
		t.Fatalf("session closed: %s", r)
	}
}

// TestOutageNeverOvergrantsLocally: two sessions of one user on one
// instance share the local view of the user's day budget: what they are
// granted during the outage never exceeds what the store had left.
func TestOutageNeverOvergrantsLocally(t *testing.T) {
	ctx := t.Context()
	tier := budgetTier(0.02) // 20_000_000 nano-dollars
	g, fs, sp := outageGov(t, tier)
	a := newGovSession(t, g, "vgs_a", "bea")
	b := newGovSession(t, g, "vgs_b", "bea")
	// Both sessions learn the account at their first event.
	a.create(ctx)
	a.run(ctx, "vgs_a", 1_000_000)
	b.create(ctx)
	b.run(ctx, "vgs_b", 1_000_000)
	spent, _, _ := fs.Store.Spent(ctx, userDayKey("bea"))
	left := tier.Budget.UserDayUSD*1e9 - float64(spent)

	fs.down.Store(true)
	var charged int64
	granted, refused := 0, 0
	for i := 0; i < 200 && refused < 4; i++ {
		s, id := a, "vgs_a"
		if i%2 == 1 {
			s, id = b, "vgs_b"
		}
		code, _ := s.create(ctx)
		if code != "" {
			if code != CodeBudgetExceeded {
				t.Fatalf("refusal %s, want %s", code, CodeBudgetExceeded)
			}
			refused++
			continue
		}
		granted++
		// The worst case: the response costs all it was granted.
		gv := s.gv
		gv.mu.Lock()
		cost := gv.pending[len(gv.pending)-1].granted
		gv.mu.Unlock()
		charged += cost
		s.run(ctx, id, cost)
	}
	if granted == 0 || refused == 0 {
		t.Fatalf("granted %d, refused %d: want some of each", granted, refused)
	}
	if float64(charged) > left {
		t.Fatalf("local grants let responses cost %d > %0.f left in the store: over-grant", charged, left)
	}
	for _, s := range []*govSession{a, b} {
		if r, ok := s.closed.Load().(string); ok {
			t.Fatalf("a local refusal closed the session: %s", r)
		}
	}
	fs.down.Store(false)
	waitSpool(t, sp)
	spent, reserved, _ := fs.Store.Spent(ctx, userDayKey("bea"))
	if limit := int64(tier.Budget.UserDayUSD * 1e9); spent > limit || reserved != 0 {
		t.Fatalf("after replay spent %d (limit %d), reserved %d", spent, limit, reserved)
	}
	t.Logf("granted %d, refused %d; charged %d of %.0f left", granted, refused, charged, left)
}

// TestOutageOwnChargesCountUntilReplayed: after the store returns, and
// until the spool has replayed this instance's outage charges, the store
// cannot see them: the instance's own view still bounds its grants, so
// outage and post-outage grants together stay within what was left.
func TestOutageOwnChargesCountUntilReplayed(t *testing.T) {
	ctx := t.Context()
	tier := budgetTier(0.02)
	g, fs, sp := outageGovReplay(t, tier, time.Hour) // no replay during the test
	s := newGovSession(t, g, "vgs_e", "eve")
	s.create(ctx)
	s.run(ctx, "vgs_e", 1_000_000)
	spent, _, _ := fs.Store.Spent(ctx, userDayKey("eve"))
	left := int64(tier.Budget.UserDayUSD*1e9) - spent

	grantOf := func() int64 {
		gv := s.gv
		gv.mu.Lock()
		defer gv.mu.Unlock()
		return gv.pending[len(gv.pending)-1].granted
	}
	var total int64
	fs.down.Store(true)
	for range 2 {
		if code, _ := s.create(ctx); code != "" {
			t.Fatalf("outage grant refused: %s", code)
		}
		g := grantOf()
		total += g
		s.run(ctx, "vgs_e", g)
	}
	fs.down.Store(false)
	if sp.Pending() == 0 {
		t.Fatal("the outage charges were not spooled")
	}
	for i := 0; i < 50; i++ {
		code, _ := s.create(ctx)
		if code == CodeBudgetExceeded {
			break
		}
		if code != "" {
			t.Fatalf("refusal %s", code)
		}
		g := grantOf()
		total += g
		s.run(ctx, "vgs_e", g)
	}
	if total > left {
		t.Fatalf("granted %d in all > %d left before the outage: the unreplayed charges were not counted", total, left)
	}
	if r, ok := s.closed.Load().(string); ok {
		t.Fatalf("session closed: %s", r)
	}
	t.Logf("granted %d of %d left", total, left)
}

// TestOutageUnknownAccountFailsClosed: a session that never learned its
// accounts before the outage gets governance_unavailable, not a grant.
func TestOutageUnknownAccountFailsClosed(t *testing.T) {
	ctx := t.Context()
	g, fs, _ := outageGov(t, budgetTier(5))
	fs.down.Store(true)
	s := newGovSession(t, g, "vgs_c", "cyd")
	if code, _ := s.create(ctx); code != CodeGovernUnavailable {
		t.Fatalf("refusal %q, want %q", code, CodeGovernUnavailable)
	}
	// Once the store is back the session gets its response.
	fs.down.Store(false)
	if code, _ := s.create(ctx); code != "" {
		t.Fatalf("refused after the store returned: %s", code)
	}
}

// TestOutageLocalRateLimit: the per-session limits keep applying while
// the store is down (they live in the session, not in the store).
func TestOutageLocalRateLimit(t *testing.T) {
	ctx := t.Context()
	tier := budgetTier(5)
	tier.Rates = policy.Rates{ResponsesPerMinute: 3}
	g, fs, _ := outageGov(t, tier)
	s := newGovSession(t, g, "vgs_d", "dee")
	s.create(ctx) // learn
	s.run(ctx, "vgs_d", 10)
	fs.down.Store(true)
	var codes []string
	for range 5 {
		code, _ := s.create(ctx)
		if code == "" {
			s.run(ctx, "vgs_d", 10)
		}
		codes = append(codes, code)
	}
	got := strings.Join(codes, ",")
	// Per-session limits never touch the store: the burst of 3 counts the
	// first response, before the outage, too.
	if want := ",," + CodeRateLimited + "," + CodeRateLimited + "," + CodeRateLimited; got != want {
		t.Fatalf("codes %q, want %q", got, want)
	}
}

// TestLocalBudgetsLearn: a read of the store replaces the learned value
// and forgets local charges only when they are known to be in it.
func TestLocalBudgetsLearn(t *testing.T) {
	var l localBudgets
	acc := []store.BudgetAccount{{Key: "user:day:x:2026-11-29", LimitNano: 100}}
	if g, _, unknown := l.grant(acc, 10, 1); g != 0 || !unknown {
		t.Fatalf("grant on an unknown account = %d, unknown %v", g, unknown)
	}
	l.learn(acc, []int64{100}, l.snapshot(acc), true)
	g, rem, _ := l.grant(acc, 60, 10)
	if g != 60 || rem != 40 {
		t.Fatalf("grant = %d (remaining %d), want 60 (40)", g, rem)
	}
	if g, _, _ := l.grant(acc, 60, 10); g != 40 {
		t.Fatalf("second grant = %d, want the 40 left", g)
	}
	if g, _, _ := l.grant(acc, 60, 10); g != 0 {
		t.Fatalf("third grant = %d, want 0", g)
	}
	l.done(acc, 60, 50) // cost 50 of 60 held
	l.release(acc, 40)  // never ran
	if g, _, _ := l.grant(acc, 100, 1); g != 50 {
		t.Fatalf("grant after done/release = %d, want 50", g)
	}
	l.release(acc, 50)

	// A read taken while the charge was still spooled does not include
	// it: the charge stays deducted.
	snap := l.snapshot(acc)
	l.learn(acc, []int64{100}, snap, false)
	if g, _, _ := l.grant(acc, 100, 1); g != 50 {
		t.Fatalf("grant after an unsettled read = %d, want 50", g)
	}
	l.release(acc, 50)
	// A read with the spool empty includes it.
	snap = l.snapshot(acc)
	l.learn(acc, []int64{50}, snap, true)
	if g, _, _ := l.grant(acc, 100, 1); g != 50 {
		t.Fatalf("grant after a settled read = %d, want 50", g)
	}
}

func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
