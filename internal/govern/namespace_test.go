package govern

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// TestUsersNamespacedByAppKey: app A's "carol" and app B's "carol" do not
// share the per-user concurrency cap, the per-user mint rate or the
// per-user budget accounts; two sessions of one app's carol do.
func TestUsersNamespacedByAppKey(t *testing.T) {
	ctx := t.Context()
	tier := testTier()
	tier.Concurrency.PerUser = 1
	tier.Rates.MintsPerUserPerMinute = 1
	tier.Budget.UserDayUSD = 1
	g := &Governor{Store: memory.New(), Tiers: map[string]policy.Tier{tier.Name: tier}, Instance: "i1"}
	now := time.Now()
	sess := func(id, key string) *store.Session {
		return &store.Session{ID: id, User: "carol", AppKeyID: key, Tier: tier.Name, Model: "gpt-realtime", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	a1, b1, a2 := sess("vgs_a1", "key_a"), sess("vgs_b1", "key_b"), sess("vgs_a2", "key_a")

	if err := g.AdmitMint(ctx, tier.Name, "gpt-realtime", "carol", "key_a"); err != nil {
		t.Fatalf("app A's first mint for carol: %v", err)
	}
	if err := g.AdmitMint(ctx, tier.Name, "gpt-realtime", "carol", "key_b"); err != nil {
		t.Fatalf("app B's mint for its own carol was limited by app A's: %v", err)
	}
	var ref *Refusal
	if err := g.AdmitMint(ctx, tier.Name, "gpt-realtime", "carol", "key_a"); !errors.As(err, &ref) {
		t.Fatalf("app A's second mint for carol within the minute: %v, want a refusal", err)
	}

	if _, err := g.Admit(ctx, a1, "h-a1"); err != nil {
		t.Fatalf("admit app A's carol: %v", err)
	}
	if _, err := g.Admit(ctx, b1, "h-b1"); err != nil {
		t.Fatalf("app B's carol refused by app A's slot: %v", err)
	}
	if _, err := g.Admit(ctx, a2, "h-a2"); !errors.As(err, &ref) || ref.Limit != "concurrency_per_user" {
		t.Fatalf("second session of app A's carol: %v, want concurrency_per_user", err)
	}

	keys := func(rec *store.Session) []string {
		var out []string
		for _, a := range Accounts(rec, tier, now) {
			out = append(out, a.Key)
		}
		return out
	}
	day := now.UTC().Format("2006-01-02")
	if ka, kb := keys(a1), keys(b1); !slices.Contains(ka, "user:day:key_a/carol:"+day) || !slices.Contains(kb, "user:day:key_b/carol:"+day) {
		t.Errorf("accounts of app A's and app B's carol: %v and %v", ka, kb)
	}
	admin := sess("vgs_adm", "")
	if k := keys(admin); !slices.Contains(k, "user:day:carol:"+day) {
		t.Errorf("accounts of an admin-minted carol: %v, want the bare user", k)
	}
}
