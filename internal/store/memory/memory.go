// Package memory is an in-process store.Store for tests and `--store memory`.
//
// Everything lives in maps behind one mutex, so every operation is trivially
// atomic; nothing survives the process. Revocations fan out to subscribers of
// the same Store value only.
package memory

import (
	"context"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// Store keeps every record in memory. The zero value is not usable: call New.
type Store struct {
	// Now is the clock for rate limits, leases and audit defaults; nil means
	// time.Now. Set it before first use.
	Now func() time.Time

	mu          sync.Mutex
	sessions    map[string]*store.Session // by id; stored copies
	byToken     map[string]string         // token hash -> session id
	userRevoked map[string]time.Time
	keys        map[string]*store.AppKey // by id; stored copies
	keyByHash   map[string]string        // key hash -> key id
	ledger      []store.LedgerEntry
	ledgerSeen  map[ledgerKey]struct{}
	audit       []store.AuditEntry
	auditSeq    int64
	tat         map[string]time.Time            // GCRA theoretical arrival time per key
	leases      map[string]map[string]time.Time // key -> holder -> expiry
	accounts    map[string]*account
	holds       map[string]hold // reservation id -> hold
	holdSeq     uint64          // grants so far, to order holds
	subs        map[*subscriber]struct{}
	ops         uint64 // granted Allow and AcquireLease calls, to pace gc

	done      chan struct{} // closed by Close: subscriptions end
	closeOnce sync.Once
	subWG     sync.WaitGroup // subscription goroutines
}

var _ store.Store = (*Store)(nil)

type ledgerKey struct{ session, response string }

// New returns an empty Store.
func New() *Store {
	return &Store{
		sessions:    make(map[string]*store.Session),
		byToken:     make(map[string]string),
		userRevoked: make(map[string]time.Time),
		keys:        make(map[string]*store.AppKey),
		keyByHash:   make(map[string]string),
		ledgerSeen:  make(map[ledgerKey]struct{}),
		tat:         make(map[string]time.Time),
		leases:      make(map[string]map[string]time.Time),
		accounts:    make(map[string]*account),
		holds:       make(map[string]hold),
		subs:        make(map[*subscriber]struct{}),
		done:        make(chan struct{}),
	}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Ping always succeeds: memory is always available.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close ends every revocation subscription (closing its channel) and waits
// for them. The records stay readable: they live as long as the Store value,
// which several "handles" may share. Calling Close again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock() // SubscribeRevocations checks done and registers under mu
		close(s.done)
		s.mu.Unlock()
		s.subWG.Wait()
	})
	return nil
}
