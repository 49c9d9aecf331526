package login

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	maxWebhookBody    = 64 << 10
	maxWebhookEntries = 10000
)

// WebhookConfig configures an auth webhook.
type WebhookConfig struct {
	// URL receives a GET carrying the caller's Authorization and Cookie
	// headers (and nothing else of the caller's request).
	URL string
	// Timeout bounds one webhook call (default 5 s).
	Timeout time.Duration
	// CacheTTL is how long an accepted answer is reused for the same
	// headers (default 30 s; negative disables the cache). Refusals are
	// never cached.
	CacheTTL time.Duration
	// HTTPClient makes the calls (default http.DefaultTransport). Redirects
	// are never followed: a 3xx (e.g. to a login page) is a refusal.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Webhook authenticates cookie-session callers by asking the app's own
// backend who they are. The webhook answers 2xx with {"user": …, "tier": …}
// (user required) to accept; any 4xx or 3xx, or a 2xx without a user,
// refuses (ErrUnauthenticated); a timeout, a network error, a 5xx or a
// malformed 2xx body fails closed with ErrUnavailable.
type Webhook struct {
	url     string
	timeout time.Duration
	ttl     time.Duration
	client  *http.Client
	now     func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached // keyed by a hash of the forwarded headers, never by raw values
}

type cached struct {
	id      Identity
	expires time.Time
}

// NewWebhook validates cfg and builds the authenticator.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("login: webhook url must be an absolute http(s) url")
	}
	w := &Webhook{
		url:     cfg.URL,
		timeout: cfg.Timeout,
		ttl:     cfg.CacheTTL,
		now:     cfg.Now,
		cache:   make(map[[32]byte]cached),
	}
	if w.timeout <= 0 {
		w.timeout = 5 * time.Second
	}
	if w.ttl == 0 {
		w.ttl = 30 * time.Second
	}
	if w.now == nil {
		w.now = time.Now
	}
	c := http.Client{}
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w.client = &c
	return w, nil
}

// Authenticate forwards r's Authorization and Cookie headers to the webhook.
func (w *Webhook) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	authz := r.Header.Values("Authorization")
	cookies := r.Header.Values("Cookie")
	if len(authz) == 0 && len(cookies) == 0 {
		return Identity{}, unauthenticated("no credentials to forward")
	}
	key := headerKey(authz, cookies)
	if id, ok := w.cached(key); ok {
		return id, nil
	}
	id, err := w.call(ctx, authz, cookies)
	if err != nil {
		return Identity{}, err
	}
	w.store(key, id)
	return id, nil
}

func (w *Webhook) call(ctx context.Context, authz, cookies []string) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return Identity{}, &reasonError{base: ErrUnavailable, reason: "webhook request", cause: err}
	}
	for _, v := range authz {
		req.Header.Add("Authorization", v)
	}
	for _, v := range cookies {
		req.Header.Add("Cookie", v)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// The error text holds the URL, never the forwarded headers.
		return Identity{}, &reasonError{base: ErrUnavailable, reason: "webhook unreachable", cause: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookBody+1))
	switch {
	case resp.StatusCode >= 500:
		return Identity{}, &reasonError{base: ErrUnavailable, reason: fmt.Sprintf("webhook answered %d", resp.StatusCode)}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Identity{}, unauthenticated(fmt.Sprintf("webhook answered %d", resp.StatusCode))
	case err != nil:
		return Identity{}, &reasonError{base: ErrUnavailable, reason: "webhook body", cause: err}
	case len(body) > maxWebhookBody:
		return Identity{}, &reasonError{base: ErrUnavailable, reason: "webhook body larger than 64 KiB"}
	}
	var ans struct {
		User *string `json:"user"`
		Tier *string `json:"tier"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return Identity{}, &reasonError{base: ErrUnavailable, reason: "webhook body is not the expected json", cause: err}
	}
	if ans.User == nil || *ans.User == "" {
		return Identity{}, unauthenticated("webhook named no user")
	}
	id := Identity{User: *ans.User}
	if ans.Tier != nil {
		id.Tier = *ans.Tier
	}
	return id, nil
}

// headerKey hashes the forwarded headers; the cache never holds raw cookies.
func headerKey(authz, cookies []string) [32]byte {
	h := sha256.New()
	for _, v := range authz {
		io.WriteString(h, "a\x00"+v+"\x00")
	}
	for _, v := range cookies {
		io.WriteString(h, "c\x00"+v+"\x00")
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (w *Webhook) cached(key [32]byte) (Identity, bool) {
	if w.ttl < 0 {
		return Identity{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.cache[key]
	if !ok {
		return Identity{}, false
	}
	if !w.now().Before(c.expires) {
		delete(w.cache, key)
		return Identity{}, false
	}
	return c.id, true
}

func (w *Webhook) store(key [32]byte, id Identity) {
	if w.ttl < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if len(w.cache) >= maxWebhookEntries {
		for k, c := range w.cache {
			if !now.Before(c.expires) {
				delete(w.cache, k)
			}
		}
		if len(w.cache) >= maxWebhookEntries {
			clear(w.cache)
		}
	}
	w.cache[key] = cached{id: id, expires: now.Add(w.ttl)}
}
