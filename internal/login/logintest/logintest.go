// Package logintest provides identity-provider fixtures for tests of JWT
// login: signing keys, JWKS documents, a JWKS server that can rotate its
// keys, and hand-assembled tokens for algorithms a library refuses to sign.
//
// It is imported only by _test.go files; production code must not use it.
package logintest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Key is a signing key of a test identity provider.
type Key struct {
	Kid  string
	Alg  jwa.SignatureAlgorithm
	Priv jwk.Key // carries Kid, so signed tokens name it in their header
	Pub  jwk.Key
}

// NewKey generates a key of kind "rsa" (RS256, 2048 bits), "ec" (ES256)
// or "ed" (EdDSA) with key id kid. It fails t on an unknown kind.
func NewKey(t testing.TB, kind, kid string) Key {
	t.Helper()
	var (
		raw any
		alg jwa.SignatureAlgorithm
	)
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		raw, alg = k, jwa.RS256()
	case "ec":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, alg = k, jwa.ES256()
	case "ed":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, alg = k, jwa.EdDSA()
	default:
		t.Fatalf("logintest: unknown key kind %q", kind)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return Key{Kid: kid, Alg: alg, Priv: priv, Pub: pub}
}

// Sign signs tok with k; the header names k's kid.
func (k Key) Sign(t testing.TB, tok jwt.Token) string {
	t.Helper()
	out, err := jwt.Sign(tok, jwt.WithKey(k.Alg, k.Priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// JWKS is the JSON key set of the public halves of keys.
func JWKS(t testing.TB, keys ...Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.Pub); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// IDP serves a JWKS on loopback that a test can rotate, counting fetches.
// It is closed when the test ends.
type IDP struct {
	// URL is the JWKS URL.
	URL     string
	srv     *httptest.Server
	mu      sync.Mutex
	set     []byte
	fetches atomic.Int32
}

// NewIDP starts an IDP serving keys.
func NewIDP(t testing.TB, keys ...Key) *IDP {
	t.Helper()
	p := &IDP{}
	p.Publish(t, keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.set)
	}))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Publish replaces the served key set.
func (p *IDP) Publish(t testing.TB, keys ...Key) {
	t.Helper()
	b := JWKS(t, keys...)
	p.mu.Lock()
	p.set = b
	p.mu.Unlock()
}

// Fetches is how many times the key set was requested.
func (p *IDP) Fetches() int { return int(p.fetches.Load()) }

// Close stops serving, so that later fetches fail.
func (p *IDP) Close() { p.srv.Close() }

// RawToken assembles a compact JWS by hand from header and payload (each
// marshalled to JSON), signing the signing input with sig; for algorithms
// and key confusions the library would refuse to produce.
func RawToken(t testing.TB, header, payload any, sig func(signingInput string) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return in + "." + enc.EncodeToString(sig(in))
}

// HS256 is a RawToken signer: HMAC-SHA256 keyed with key.
func HS256(key []byte) func(string) []byte {
	return func(in string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}
