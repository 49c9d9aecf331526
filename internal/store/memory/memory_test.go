package memory_test

import (
	"context"
	"errors"
	"time"

	"testing"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		s := memory.New()
		return func() store.Store { return s }
	})
}

func TestClockConformance(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) func() store.Store {
		s := memory.New()
		s.Now = now
		return func() store.Store { return s }
	})
}

func BenchmarkHotPaths(b *testing.B) {
	storetest.Bench(b, func(testing.TB) func() store.Store {
		s := memory.New()
		return func() store.Store { return s }
	})
}

func TestCloseEndsSubscriptions(t *testing.T) {
	s := memory.New()
	ch, err := s.SubscribeRevocations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("subscription delivered after Close")
	}
	if _, err := s.SubscribeRevocations(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("SubscribeRevocations after Close: err = %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
