package govern

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// downLeases is a memory store whose lease renewals fail as an unreachable
// Redis's do, while down is set.
type downLeases struct {
	*memory.Store
	down bool
}

func (d *downLeases) RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error {
	if d.down {
		return store.ErrUnavailable
	}
	return d.Store.RenewLease(ctx, key, holder, ttl)
}

// TestLeaseRenewalOutageLoggedOnce: renewals failing every third of the
// TTL while the store is down warn once per lease and outage, and say when
// they succeed again.
func TestLeaseRenewalOutageLoggedOnce(t *testing.T) {
	ctx := t.Context()
	st := &downLeases{Store: memory.New()}
	var logs bytes.Buffer // one goroutine: renew is called directly
	g := &Governor{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), LeaseTTL: time.Minute}
	if ok, err := st.AcquireLease(ctx, "tok:vgs_o", "h1", 1, time.Minute); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	a := &Admission{g: g, rec: &store.Session{ID: "vgs_o"}, holder: "h1", leases: []lease{{key: "tok:vgs_o", max: 1}}}
	st.down = true
	for range 5 {
		a.renew(ctx)
	}
	if n := strings.Count(logs.String(), "lease renewal failed"); n != 1 {
		t.Errorf("%d warnings over 5 failed renewals, want 1:\n%s", n, logs.String())
	}
	st.down = false
	a.renew(ctx)
	a.renew(ctx)
	if n := strings.Count(logs.String(), "lease renewed again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
	st.down = true
	a.renew(ctx)
	if n := strings.Count(logs.String(), "lease renewal failed"); n != 2 {
		t.Errorf("a second outage logged %d warnings in all, want 2", n)
	}
}
