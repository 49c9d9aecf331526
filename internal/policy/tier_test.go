package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

func TestUSDToNano(t *testing.T) {
	tests := []struct {
		in      float64
		want    int64
		wantErr bool
	}{
		{0, 0, false},
		{0.1, 100_000_000, false},
		{0.3, 300_000_000, false},
		{1.1, 1_100_000_000, false},
		{5, 5_000_000_000, false},
		{0.000000001, 1, false},
		{0.0000000015, 2, false}, // half rounds away from zero
		{0.0000000014, 1, false},
		{19.99, 19_990_000_000, false},
		{-0.01, 0, true},
		{1e300, 0, true},
	}
	for _, tt := range tests {
		got, err := USDToNano(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("USDToNano(%v) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDefaultTierValid(t *testing.T) {
	if err := DefaultTier().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWarnLead(t *testing.T) {
	tier := DefaultTier()
	for _, tt := range []struct {
		max  int
		want time.Duration
	}{{1800, 30 * time.Second}, {60, 20 * time.Second}, {9, 3 * time.Second}, {0, 0}} {
		if got := tier.WarnLead(tt.max); got != tt.want {
			t.Errorf("WarnLead(%d) = %v, want %v", tt.max, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestNarrow(t *testing.T) {
	tier := DefaultTier() // 1800 s, idle 120 s, $1 per session, 2 per user
	unlimited := Tier{Name: "free-for-all"}
	tests := []struct {
		name      string
		tier      Tier
		req       MintLimits
		want      store.Limits
		wantParam string
	}{
		{"tier values", tier, MintLimits{}, store.Limits{MaxSessionSeconds: 1800, IdleTimeoutSeconds: 120, BudgetNanoUSD: 1e9, MaxConcurrent: 2}, ""},
		{"tighten all", tier, MintLimits{MaxSessionSeconds: ptr(300), IdleTimeoutSeconds: ptr(30), BudgetUSD: ptr(0.25), MaxConcurrent: ptr(1)},
			store.Limits{MaxSessionSeconds: 300, IdleTimeoutSeconds: 30, BudgetNanoUSD: 250_000_000, MaxConcurrent: 1}, ""},
		{"equal is fine", tier, MintLimits{BudgetUSD: ptr(1.0), MaxSessionSeconds: ptr(1800)}, store.Limits{MaxSessionSeconds: 1800, IdleTimeoutSeconds: 120, BudgetNanoUSD: 1e9, MaxConcurrent: 2}, ""},
		{"loosen budget", tier, MintLimits{BudgetUSD: ptr(1.01)}, store.Limits{}, "limits.budget_usd"},
		{"loosen duration", tier, MintLimits{MaxSessionSeconds: ptr(1801)}, store.Limits{}, "limits.max_session_seconds"},
		{"loosen idle", tier, MintLimits{IdleTimeoutSeconds: ptr(121)}, store.Limits{}, "limits.idle_timeout_seconds"},
		{"loosen concurrency", tier, MintLimits{MaxConcurrent: ptr(3)}, store.Limits{}, "limits.max_concurrent"},
		{"zero budget", tier, MintLimits{BudgetUSD: ptr(0.0)}, store.Limits{}, "limits.budget_usd"},
		{"negative budget", tier, MintLimits{BudgetUSD: ptr(-1.0)}, store.Limits{}, "limits.budget_usd"},
		{"zero duration", tier, MintLimits{MaxSessionSeconds: ptr(0)}, store.Limits{}, "limits.max_session_seconds"},
		{"unlimited tier accepts any", unlimited, MintLimits{BudgetUSD: ptr(100.0), MaxSessionSeconds: ptr(3600)},
			store.Limits{MaxSessionSeconds: 3600, BudgetNanoUSD: 100e9}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.tier.Narrow(tt.req)
			if tt.wantParam != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Param != tt.wantParam {
					t.Fatalf("err = %v, want FieldError on %s", err, tt.wantParam)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestTokenTTL(t *testing.T) {
	tier := DefaultTier() // default 10 min, max 1 h
	tests := []struct {
		in      *int
		want    time.Duration
		wantErr bool
	}{
		{nil, 10 * time.Minute, false},
		{ptr(10), 10 * time.Second, false},
		{ptr(3600), time.Hour, false},
		{ptr(3601), 0, true},
		{ptr(9), 0, true},
		{ptr(7201), 0, true},
	}
	for _, tt := range tests {
		got, err := tier.TokenTTL(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("TokenTTL(%v) = %v, %v", tt.in, got, err)
		}
		var fe *FieldError
		if tt.wantErr && (!errors.As(err, &fe) || fe.Param != "expires_after.seconds") {
			t.Errorf("TokenTTL error %v lacks param", err)
		}
	}
}
