// Package live keeps the live connections of an engine (the WebSocket
// relay, the WebRTC calls): each registered with its session, found by a
// predicate for revocations and limits, refused once the engine shuts
// down, and waited for when it does.
package live

import (
	"sync"

	"github.com/voicegate/voicegate/internal/store"
)

// Set is the live connections of one engine. The zero value is ready to
// use; it is safe for concurrent use.
type Set[T comparable] struct {
	mu       sync.Mutex
	m        map[T]*store.Session
	shutting bool
	wg       sync.WaitGroup
}

// Add registers x, a connection of rec; it reports false (and registers
// nothing) once Close was called. Every Add that succeeds needs a Remove.
func (s *Set[T]) Add(x T, rec *store.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return false
	}
	if s.m == nil {
		s.m = map[T]*store.Session{}
	}
	s.m[x] = rec
	s.wg.Add(1)
	return true
}

// Remove forgets x, registered by Add.
func (s *Set[T]) Remove(x T) {
	s.mu.Lock()
	delete(s.m, x)
	s.mu.Unlock()
	s.wg.Done()
}

// Select returns the connections for which keep is true.
func (s *Set[T]) Select(keep func(x T, rec *store.Session) bool) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []T
	for x, rec := range s.m {
		if keep(x, rec) {
			out = append(out, x)
		}
	}
	return out
}

// Has reports whether session sessionID has a connection here.
func (s *Set[T]) Has(sessionID string) bool {
	return len(s.Select(func(_ T, rec *store.Session) bool { return rec.ID == sessionID })) > 0
}

// Len reports the connections.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Shutting reports whether Close was called.
func (s *Set[T]) Shutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// Close refuses further Adds and returns the connections registered now.
func (s *Set[T]) Close() []T {
	s.mu.Lock()
	s.shutting = true
	s.mu.Unlock()
	return s.Select(func(T, *store.Session) bool { return true })
}

// Done returns a channel closed once every connection added was removed.
func (s *Set[T]) Done() <-chan struct{} {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }() // owner: the caller, which waits on done
	return done
}
