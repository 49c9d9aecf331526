package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
	"github.com/voicegate/voicegate/internal/token"
)

type fakeLogin struct{ user string }

func (f fakeLogin) Authenticate(r *http.Request) (string, string, error) {
	if BearerToken(r) != "jwt-ok" {
		return "", "", errors.New("bad jwt")
	}
	return f.user, "pro", nil
}

func req(bearer string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	admin := strings.Repeat("a", 40)
	good, _ := token.NewAppKey(rand.Reader)
	revoked, _ := token.NewAppKey(rand.Reader)
	unknown, _ := token.NewAppKey(rand.Reader)
	now := time.Now()
	st.CreateKey(ctx, &store.AppKey{ID: "key_good", Hash: good.Hash(), Name: "g", CreatedAt: now})
	st.CreateKey(ctx, &store.AppKey{ID: "key_rev", Hash: revoked.Hash(), Name: "r", CreatedAt: now})
	st.RevokeKey(ctx, "key_rev", now)

	a := &Authenticator{AdminKey: config.Secret(admin), Keys: st}
	tests := []struct {
		name   string
		bearer string
		kind   Kind
		reason string
	}{
		{"admin", admin, KindAdmin, ""},
		{"admin prefix", admin[:39], "", "invalid"},
		{"app key", good.Reveal(), KindAppKey, ""},
		{"revoked key", revoked.Reveal(), "", "revoked"},
		{"unknown key", unknown.Reveal(), "", "invalid"},
		{"garbled key", good.Reveal()[:20] + "x" + good.Reveal()[21:], "", "malformed"},
		{"none", "", "", "missing"},
		{"jwt without login", "jwt-ok", "", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(req(tt.bearer))
			if tt.reason != "" {
				if err == nil || Reason(err) != tt.reason {
					t.Fatalf("err %v reason %q, want %q", err, Reason(err), tt.reason)
				}
				return
			}
			if err != nil || p.Kind != tt.kind {
				t.Fatalf("got %+v, %v", p, err)
			}
			if tt.kind == KindAppKey && p.AppKeyID() != "key_good" {
				t.Fatalf("app key id %q", p.AppKeyID())
			}
		})
	}

	a.Login = fakeLogin{user: "u1"}
	p, err := a.Authenticate(req("jwt-ok"))
	if err != nil || p.Kind != KindUser || p.User != "u1" || p.Tier != "pro" {
		t.Fatalf("login: %+v %v", p, err)
	}
	if _, err := a.Authenticate(req("jwt-bad")); Reason(err) != "invalid" {
		t.Fatalf("bad login: %v", err)
	}
}
