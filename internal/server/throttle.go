package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/token"
)

// Bounds of failed authentication, per source address and per credential
// prefix: a burst of authFailBurst failures, then one per authFailEvery.
const (
	authFailBurst = 20
	authFailEvery = time.Second
	// authFailKeys bounds the memory of the throttle; when it is full of
	// keys still throttled, new sources share one key.
	authFailKeys = 100_000
	// credPrefix is how much of a presented credential keys the throttle:
	// the same bad token from many addresses is throttled too.
	credPrefix = 16
)

// failThrottle counts failed authentications per key with a GCRA. A
// failure beyond the limit of its source address or its credential prefix
// is answered 429 instead of 401 and costs no audit row and no log line;
// a credential over its limit is refused before it is looked at (no store
// lookup, no login webhook call). Successful requests are never counted or
// refused by their source, so clients sharing an address (a NAT, a proxy)
// are not locked out by one that fails.
type failThrottle struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

// blocked reports how long a request must wait when one of keys is over
// the limit (0: it may try).
func (t *failThrottle) blocked(now time.Time, keys []string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if tat, ok := t.tat[k]; ok {
			wait = max(wait, tat.Sub(now)-authFailBurst*authFailEvery)
		}
	}
	return max(wait, 0)
}

// fail counts one failure on every key and reports how long the caller
// must wait when one of them is now over the limit (0: within it).
func (t *failThrottle) fail(now time.Time, keys []string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tat == nil {
		t.tat = map[string]time.Time{}
	}
	var wait time.Duration
	for _, k := range keys {
		tat, ok := t.tat[k]
		if !ok && len(t.tat) >= authFailKeys {
			t.sweepLocked(now)
			if len(t.tat) >= authFailKeys {
				k = "overflow"
				tat = t.tat[k]
			}
		}
		if tat.Before(now) {
			tat = now
		}
		over := tat.Sub(now) - (authFailBurst-1)*authFailEvery
		if over > 0 {
			wait = max(wait, over)
			continue // a refused failure does not push the key further out
		}
		t.tat[k] = tat.Add(authFailEvery)
	}
	return wait
}

// sweepLocked forgets the keys whose failures have all drained.
func (t *failThrottle) sweepLocked(now time.Time) {
	for k, tat := range t.tat {
		if !tat.After(now) {
			delete(t.tat, k)
		}
	}
}

// failKeys are the throttle keys of a request: its source address and,
// when it presents one, its credential's.
func failKeys(r *http.Request, credential string) []string {
	remote := r.RemoteAddr
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	keys := []string{"ip:" + remote}
	if credential != "" {
		keys = append(keys, credKey(credential))
	}
	return keys
}

// credKey keys a credential by a digest of its first bytes: the same bad
// token from many addresses is throttled too.
func credKey(credential string) string {
	return "cred:" + token.ID(credential[:min(len(credential), credPrefix)])
}

// throttled refuses, before it is looked at, a credential that failed too
// often (429 with Retry-After); the refusal is counted, not audited or
// logged.
func (s *Server) throttled(r *http.Request, endpoint, credential string) error {
	if credential == "" {
		return nil
	}
	wait := s.throttle.blocked(s.Now(), []string{credKey(credential)})
	if wait <= 0 {
		return nil
	}
	s.metrics.authFailures.WithLabelValues(endpoint, "throttled").Inc()
	return throttledError(wait)
}

func throttledError(wait time.Duration) error {
	return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded", RetryAfter: wait,
		Message: "Too many failed authentications from this source or with this credential. Retry later."}
}
