package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/redis/redistest"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	url, _, _ := redistest.Start(b)
	return open(b, url, uniquePrefix())
}

func BenchmarkAllow(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	l := store.PerSecond(1_000_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Allow(ctx, "bench", l); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAcquireReleaseLease(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		holder := fmt.Sprintf("h%d", n.Add(1))
		for pb.Next() {
			if _, err := s.AcquireLease(ctx, "bench", holder, 1000, time.Minute); err != nil {
				b.Error(err)
				return
			}
			if err := s.ReleaseLease(ctx, "bench", holder); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRecordUsage(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := s.RecordUsage(ctx, store.LedgerEntry{
				SessionID: fmt.Sprintf("vgs_%d", i%100), ResponseID: fmt.Sprintf("resp_%d", i),
				User: "alice", AppKeyID: "key_1", Status: "completed",
				Usage: store.Usage{TotalTokens: 100, InputTokens: 40, OutputTokens: 60}, CostNanoUSD: 1234,
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkReserveSettle(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	accts := []store.BudgetAccount{{Key: "user:day:alice", LimitNano: 1 << 50}, {Key: "key:month:key_1", LimitNano: 1 << 50}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("r%d", n.Add(1))
			if _, err := s.Reserve(ctx, store.Reservation{ID: id, Accounts: accts, Want: 1000, Min: 1}); err != nil {
				b.Error(err)
				return
			}
			if err := s.Settle(ctx, id, 500); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConformance runs the shared hot-path benchmarks, comparable
// across backends.
func BenchmarkConformance(b *testing.B) {
	url, _, _ := redistest.Start(b)
	storetest.Bench(b, func(tb testing.TB) func() store.Store {
		prefix := uniquePrefix()
		return func() store.Store {
			s, err := Open(context.Background(), url, WithPrefix(prefix))
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			return s // closed by the suite
		}
	})
}
