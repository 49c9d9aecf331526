package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Bench measures the hot paths of a backend — RecordUsage on every
// response, Allow on every mint, AcquireLease on every connect — from
// parallel goroutines on one handle. newBackend is as for Run.
func Bench(b *testing.B, newBackend func(tb testing.TB) (open func() store.Store)) {
	b.Run("RecordUsage", func(b *testing.B) {
		s := benchHandle(b, newBackend)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				e := store.LedgerEntry{SessionID: fmt.Sprintf("vgs_%d", i%64), ResponseID: fmt.Sprintf("resp_%d", i),
					User: "alice", Status: "completed", Usage: store.Usage{TotalTokens: 100}, CostNanoUSD: 1000, At: time.Now()}
				if _, err := s.RecordUsage(b.Context(), e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Allow", func(b *testing.B) {
		s := benchHandle(b, newBackend)
		l := store.PerSecond(1000)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Allow(b.Context(), fmt.Sprintf("mint:user%d", n.Add(1)%64), l); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// A response's budget round: hold on three accounts, then settle.
	b.Run("ReserveSettle", func(b *testing.B) {
		s := benchHandle(b, newBackend)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				sess := fmt.Sprintf("vgs_%d", i%64)
				accts := []store.BudgetAccount{{Key: "session:" + sess, LimitNano: 1e12}, {Key: "user:day:alice", LimitNano: 1e15}, {Key: "user:month:alice", LimitNano: 1e15}}
				id := fmt.Sprintf("%s:%d", sess, i)
				if _, err := s.Reserve(b.Context(), store.Reservation{ID: id, Session: sess, Accounts: accts, Want: 1000, Min: 10}); err != nil {
					b.Error(err)
					return
				}
				if err := s.Settle(b.Context(), id, 500); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AcquireLease", func(b *testing.B) {
		s := benchHandle(b, newBackend)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := s.AcquireLease(b.Context(), fmt.Sprintf("conc:user%d", i%64), fmt.Sprintf("h%d", i%8), 4, time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchHandle(b *testing.B, newBackend func(tb testing.TB) (open func() store.Store)) store.Store {
	s := newBackend(b)()
	b.Cleanup(func() { s.Close() })
	return s
}
