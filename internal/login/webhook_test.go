package login

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWebhook(t *testing.T) {
	var calls atomic.Int32
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("X-Other") != "" {
			t.Errorf("webhook received a header it should not: X-Other")
		}
		switch c, _ := r.Cookie("session"); {
		case c != nil && c.Value == "good":
			w.Write([]byte(`{"user":"carol","tier":"pro"}`))
		case r.Header.Get("Authorization") == "Bearer app-token":
			w.Write([]byte(`{"user":"dave"}`))
		case c != nil && c.Value == "empty":
			w.Write([]byte(`{}`))
		case c != nil && c.Value == "garbled":
			w.Write([]byte(`<html>`))
		case c != nil && c.Value == "redirect":
			http.Redirect(w, r, "/login", http.StatusFound)
		case c != nil && c.Value == "broken":
			http.Error(w, "oops", http.StatusInternalServerError)
		case c != nil && c.Value == "slow":
			<-block
		default:
			http.Error(w, "no", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	defer close(block)

	now := t0
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: 200 * time.Millisecond, CacheTTL: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := func(cookie, authz string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v1/realtime/client_secrets", nil)
		if cookie != "" {
			r.Header.Set("Cookie", "session="+cookie)
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		r.Header.Set("X-Other", "must not be forwarded")
		return r
	}
	ctx := context.Background()

	tests := []struct {
		name   string
		r      *http.Request
		want   Identity
		target error
	}{
		{"cookie accepted", req("good", ""), Identity{User: "carol", Tier: "pro"}, nil},
		{"authorization accepted", req("", "Bearer app-token"), Identity{User: "dave"}, nil},
		{"denied 401", req("bad", ""), Identity{}, ErrUnauthenticated},
		{"2xx without user", req("empty", ""), Identity{}, ErrUnauthenticated},
		{"redirect is a refusal", req("redirect", ""), Identity{}, ErrUnauthenticated},
		{"no credentials", httptest.NewRequest(http.MethodPost, "/", nil), Identity{}, ErrUnauthenticated},
		{"malformed 2xx fails closed", req("garbled", ""), Identity{}, ErrUnavailable},
		{"5xx fails closed", req("broken", ""), Identity{}, ErrUnavailable},
		{"timeout fails closed", req("slow", ""), Identity{}, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wh.Authenticate(ctx, tt.r)
			if tt.target == nil {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.target) {
				t.Fatalf("err = %v, want %v", err, tt.target)
			}
			for _, secret := range []string{"good", "bad", "slow", "garbled", "broken"} {
				if strings.Contains(err.Error(), "session="+secret) {
					t.Fatalf("error leaks the cookie: %v", err)
				}
			}
		})
	}

	t.Run("cache", func(t *testing.T) {
		before := calls.Load()
		for range 3 {
			if _, err := wh.Authenticate(ctx, req("good", "")); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != before {
			t.Fatalf("cached answer not reused: %d calls", calls.Load()-before)
		}
		wh.mu.Lock()
		for k := range wh.cache {
			if strings.Contains(string(k[:]), "good") {
				t.Errorf("cache key holds the raw cookie")
			}
		}
		wh.mu.Unlock()
		now = now.Add(2 * time.Minute)
		if _, err := wh.Authenticate(ctx, req("good", "")); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != before+1 {
			t.Fatalf("expired entry not refreshed: %d calls", calls.Load()-before)
		}
		// Refusals are not cached: each one asks again.
		before = calls.Load()
		wh.Authenticate(ctx, req("bad", ""))
		wh.Authenticate(ctx, req("bad", ""))
		if calls.Load() != before+2 {
			t.Fatalf("refusal cached: %d calls", calls.Load()-before)
		}
	})
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	wh, err := NewWebhook(WebhookConfig{URL: url, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Cookie", "session=x")
	if _, err := wh.Authenticate(context.Background(), r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestNewWebhookValidates(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "/relative", "http://"} {
		if _, err := NewWebhook(WebhookConfig{URL: u}); err == nil {
			t.Errorf("NewWebhook(%q) succeeded", u)
		}
	}
}
