package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// minters is how many goroutines mint at once in BenchmarkMintDurable:
// cmd/vgbench's mint load keeps 32 requests in flight.
const minters = 32

// mint makes the store calls of one mint of the governed tier
// (internal/server's mint): the per-user mint rate (govern.AdmitMint), the
// session record and its audit entry.
func mint(ctx context.Context, s store.Store, i int64) error {
	user := fmt.Sprintf("bench-%d", i)
	if _, err := s.Allow(ctx, "rl:mint:user:"+user, store.PerMinute(10)); err != nil {
		return err
	}
	sess := newSession(fmt.Sprintf("vgs_bench_%d", i))
	sess.User = user
	if err := s.CreateSession(ctx, sess); err != nil {
		return err
	}
	return s.AppendAudit(ctx, store.AuditEntry{Kind: "mint", SessionID: sess.ID, User: user, Tier: sess.Tier,
		Detail: map[string]any{"token_id": sess.TokenID, "model": "gpt-realtime", "by": "admin", "expires_at": sess.ExpiresAt.Format(time.RFC3339)}})
}

// BenchmarkMintDurable measures the store side of mints from 32 concurrent
// minters, with and without group commit, in the default (NORMAL) and the
// durable (FULL: fsync per commit) mode. "one-per-commit" (WithMaxBatch(1))
// commits — and in durable mode fsyncs — every write on its own.
func BenchmarkMintDurable(b *testing.B) {
	for _, mode := range []struct {
		name    string
		durable bool
	}{{"normal", false}, {"durable", true}} {
		for _, group := range []struct {
			name  string
			batch int
		}{{"grouped", sqlite.DefaultMaxBatch}, {"one-per-commit", 1}} {
			b.Run(mode.name+"/"+group.name, func(b *testing.B) {
				s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "vg.db"),
					sqlite.WithDurable(mode.durable), sqlite.WithMaxBatch(group.batch), sqlite.WithPruneInterval(0))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var n atomic.Int64
				before := s.WriteStats()
				b.SetParallelism((minters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						if err := mint(ctx, s, n.Add(1)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				after := s.WriteStats()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mints/s")
				b.ReportMetric(float64(after.Commits-before.Commits)/float64(b.N), "commits/mint")
			})
		}
	}
}
