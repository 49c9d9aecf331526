package login

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	// maxJWKSBytes bounds a fetched key set.
	maxJWKSBytes = 1 << 20
	// failedFetchBackoff spaces fetches while no key set could be loaded.
	failedFetchBackoff = time.Second
)

// verifyKey is one usable public key of the set with the single algorithm
// it verifies.
type verifyKey struct {
	kid string
	alg jwa.SignatureAlgorithm
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is a cached JWKS. It is refetched when older than maxAge, and on an
// unknown kid at most once per minInterval.
type keySet struct {
	file, url   string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration

	mu          sync.Mutex // held across a fetch so concurrent misses fetch once
	keys        []verifyKey
	fetchedAt   time.Time
	attemptedAt time.Time
}

func newKeySet(cfg JWTConfig, now func() time.Time) (*keySet, error) {
	ks := &keySet{
		file:        cfg.JWKSFile,
		url:         cfg.JWKSURL,
		client:      cfg.HTTPClient,
		now:         now,
		minInterval: cfg.RefreshMinInterval,
		maxAge:      cfg.JWKSMaxAge,
	}
	if ks.client == nil {
		ks.client = &http.Client{Timeout: 10 * time.Second}
	}
	if ks.minInterval <= 0 {
		ks.minInterval = 30 * time.Second
	}
	if ks.maxAge <= 0 {
		ks.maxAge = 15 * time.Minute
	}
	if ks.file != "" {
		if err := ks.refresh(context.Background()); err != nil {
			return nil, fmt.Errorf("login: jwks file %s: %w", ks.file, err)
		}
	}
	return ks, nil
}

// lookup returns the key named kid. A token without kid is accepted only
// when the set holds exactly one key.
func (ks *keySet) lookup(ctx context.Context, kid string) (verifyKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	if ks.keys == nil && !ks.attemptedAt.IsZero() && now.Sub(ks.attemptedAt) < failedFetchBackoff {
		// Never fetched successfully and just failed: do not hammer the IdP.
		return verifyKey{}, &reasonError{base: ErrUnavailable, reason: "jwks not loaded yet"}
	}
	if ks.keys == nil || now.Sub(ks.fetchedAt) >= ks.maxAge {
		if err := ks.refresh(ctx); err != nil && ks.keys == nil {
			return verifyKey{}, &reasonError{base: ErrUnavailable, reason: "jwks", cause: err}
		}
	}
	if k, ok := ks.find(kid); ok {
		return k, nil
	}
	if kid == "" {
		return verifyKey{}, unauthenticated("token has no kid")
	}
	if now.Sub(ks.attemptedAt) < ks.minInterval {
		return verifyKey{}, unauthenticated("unknown key id")
	}
	if err := ks.refresh(ctx); err != nil {
		return verifyKey{}, &reasonError{base: ErrUnavailable, reason: "jwks", cause: err}
	}
	if k, ok := ks.find(kid); ok {
		return k, nil
	}
	return verifyKey{}, unauthenticated("unknown key id")
}

func (ks *keySet) find(kid string) (verifyKey, bool) {
	if kid == "" {
		if len(ks.keys) == 1 {
			return ks.keys[0], true
		}
		return verifyKey{}, false
	}
	for _, k := range ks.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return verifyKey{}, false
}

// refresh loads the set; on failure the previous keys stay. Callers hold mu.
func (ks *keySet) refresh(ctx context.Context) error {
	ks.attemptedAt = ks.now()
	raw, err := ks.load(ctx)
	if err != nil {
		return err
	}
	keys, err := parseKeySet(raw)
	if err != nil {
		return err
	}
	ks.keys = keys
	ks.fetchedAt = ks.now()
	return nil
}

func (ks *keySet) load(ctx context.Context) ([]byte, error) {
	if ks.file != "" {
		return os.ReadFile(ks.file)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("jwks larger than 1 MiB")
	}
	return body, nil
}

// parseKeySet keeps the signature-verification public keys of a JWKS.
func parseKeySet(raw []byte) ([]verifyKey, error) {
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	var keys []verifyKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		vk, err := toVerifyKey(k)
		if err != nil {
			continue // symmetric or unsupported keys are never used
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no usable signing key")
	}
	return keys, nil
}

// toVerifyKey fixes the one algorithm a key verifies, from its type and
// curve, checked against its optional "alg" member.
func toVerifyKey(k jwk.Key) (verifyKey, error) {
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return verifyKey{}, err
	}
	declared := ""
	if a, ok := k.Algorithm(); ok {
		declared = a.String()
	}
	switch key := raw.(type) {
	case *rsa.PrivateKey:
		return toVerifyKeyRaw(k, &key.PublicKey, declared)
	case *rsa.PublicKey:
		return toVerifyKeyRaw(k, key, declared)
	case *ecdsa.PrivateKey:
		return toVerifyKeyRaw(k, &key.PublicKey, declared)
	case *ecdsa.PublicKey:
		return toVerifyKeyRaw(k, key, declared)
	case ed25519.PrivateKey:
		return toVerifyKeyRaw(k, key.Public(), declared)
	case ed25519.PublicKey:
		return toVerifyKeyRaw(k, key, declared)
	}
	return verifyKey{}, fmt.Errorf("unsupported key type %T", raw)
}

func toVerifyKeyRaw(k jwk.Key, pub any, declared string) (verifyKey, error) {
	var def jwa.SignatureAlgorithm
	var allowed []jwa.SignatureAlgorithm
	switch key := pub.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < 2048 {
			return verifyKey{}, errors.New("rsa key shorter than 2048 bits")
		}
		def = jwa.RS256()
		allowed = []jwa.SignatureAlgorithm{jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512()}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			def = jwa.ES256()
		case elliptic.P384():
			def = jwa.ES384()
		case elliptic.P521():
			def = jwa.ES512()
		default:
			return verifyKey{}, errors.New("unsupported curve")
		}
		allowed = []jwa.SignatureAlgorithm{def}
	case ed25519.PublicKey:
		def = jwa.EdDSA()
		allowed = []jwa.SignatureAlgorithm{def}
	default:
		return verifyKey{}, fmt.Errorf("unsupported key type %T", pub)
	}
	alg := def
	if declared != "" {
		found := false
		for _, a := range allowed {
			if a.String() == declared {
				alg, found = a, true
				break
			}
		}
		if !found {
			return verifyKey{}, fmt.Errorf("key alg %q does not fit its type", declared)
		}
	}
	kid, _ := k.KeyID()
	return verifyKey{kid: kid, alg: alg, key: pub}, nil
}
