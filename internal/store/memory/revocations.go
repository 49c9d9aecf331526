package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/voicegate/voicegate/internal/store"
)

// subscriber is one SubscribeRevocations call. Publishers append to queue
// and poke wake; the subscriber's goroutine forwards the queue to out, so a
// slow reader never blocks a publisher and nothing is dropped.
type subscriber struct {
	mu    sync.Mutex
	queue []store.Revocation
	wake  chan struct{} // capacity 1
}

// PublishRevocation delivers r to every current subscriber of this Store.
func (s *Store) PublishRevocation(ctx context.Context, r store.Revocation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		sub.mu.Lock()
		sub.queue = append(sub.queue, r)
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// SubscribeRevocations delivers every revocation published after it returns,
// in publish order, until ctx is done or the Store is closed; then the
// channel is closed.
func (s *Store) SubscribeRevocations(ctx context.Context) (<-chan store.Revocation, error) {
	sub := &subscriber{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil, fmt.Errorf("memory: subscribe revocations: store closed: %w", store.ErrUnavailable)
	default:
	}
	s.subs[sub] = struct{}{}
	s.subWG.Add(1)
	s.mu.Unlock()
	out := make(chan store.Revocation)
	go func() {
		defer s.subWG.Done()
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.subs, sub)
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-sub.wake:
			}
			sub.mu.Lock()
			batch := sub.queue
			sub.queue = nil
			sub.mu.Unlock()
			for _, r := range batch {
				select {
				case out <- r:
				case <-ctx.Done():
					return
				case <-s.done:
					return
				}
			}
		}
	}()
	return out, nil
}
