package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// maxTokenBytes bounds the size of a bearer JWT we are willing to parse.
const maxTokenBytes = 16 << 10

// JWTConfig configures a JWT authenticator. At least one of HS256Secret,
// JWKSFile and JWKSURL must be set.
type JWTConfig struct {
	// HS256Secret, when set, accepts HS256 tokens signed with it (at least
	// 32 bytes, as RFC 7518 §3.2 requires). No other HMAC algorithm is
	// accepted.
	HS256Secret []byte
	// JWKSFile and JWKSURL name a JSON Web Key Set (at most one of the two).
	// Its RSA, EC (P-256/384/521) and Ed25519 public keys verify RS*/PS*,
	// ES* and EdDSA tokens; symmetric keys in the set are ignored.
	JWKSFile, JWKSURL string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer   string
	Audience string
	// TierClaim names the claim holding the user's tier ("" = no tier
	// claim). A dotted name ("app_metadata.tier") walks nested objects.
	TierClaim string
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 0).
	Leeway time.Duration
	// HTTPClient fetches JWKSURL (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RefreshMinInterval is the minimum time between two fetches of the key
	// set triggered by an unknown kid (default 30 s).
	RefreshMinInterval time.Duration
	// JWKSMaxAge is how long a fetched key set is used before it is
	// refetched on the next request (default 15 min). If that refetch fails
	// the previous set keeps being used.
	JWKSMaxAge time.Duration
}

// JWT authenticates requests carrying "Authorization: Bearer <JWT>".
//
// The accepted algorithm is decided by the key source, never by the token:
// HS256 tokens are checked only against HS256Secret, and a JWKS key verifies
// only with the algorithm its type (and optional "alg" member) implies, so a
// public key can never be used as an HMAC secret; an HS256 token whose kid
// names a key of the JWKS is refused even when the secret verifies it.
// Unsigned tokens ("alg": "none") are refused. exp and sub are required.
type JWT struct {
	secret    []byte
	keys      *keySet
	issuer    string
	audience  string
	tierClaim string
	leeway    time.Duration
	now       func() time.Time
}

// NewJWT validates cfg and builds the authenticator. A JWKS file is read
// now (an unreadable file is a configuration error); a JWKS URL is fetched
// on first use.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if cfg.HS256Secret == nil && cfg.JWKSFile == "" && cfg.JWKSURL == "" {
		return nil, errors.New("login: jwt needs an hs256 secret, a jwks file or a jwks url")
	}
	if cfg.HS256Secret != nil && len(cfg.HS256Secret) < 32 {
		return nil, errors.New("login: jwt hs256 secret must be at least 32 bytes")
	}
	if cfg.JWKSFile != "" && cfg.JWKSURL != "" {
		return nil, errors.New("login: jwt takes a jwks file or a jwks url, not both")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("login: jwt leeway must be ≥ 0")
	}
	j := &JWT{
		issuer:    cfg.Issuer,
		audience:  cfg.Audience,
		tierClaim: cfg.TierClaim,
		leeway:    cfg.Leeway,
		now:       cfg.Now,
	}
	if j.now == nil {
		j.now = time.Now
	}
	if cfg.HS256Secret != nil {
		j.secret = append([]byte(nil), cfg.HS256Secret...)
	}
	if cfg.JWKSFile != "" || cfg.JWKSURL != "" {
		ks, err := newKeySet(cfg, j.now)
		if err != nil {
			return nil, err
		}
		j.keys = ks
	}
	return j, nil
}

// Authenticate verifies the bearer JWT of r.
func (j *JWT) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	tok, ok := bearer(r)
	if !ok {
		return Identity{}, unauthenticated("missing bearer token")
	}
	return j.Verify(ctx, tok)
}

// Verify checks a compact JWT and returns the identity it carries.
func (j *JWT) Verify(ctx context.Context, token string) (Identity, error) {
	if len(token) > maxTokenBytes {
		return Identity{}, unauthenticated("token too large")
	}
	hdr, err := parseHeader(token)
	if err != nil {
		return Identity{}, err
	}
	var (
		alg jwa.SignatureAlgorithm
		key any
	)
	switch hdr.Alg {
	case "", "none", "None", "NONE":
		return Identity{}, unauthenticated("unsigned token refused")
	case "HS256":
		if j.secret == nil {
			return Identity{}, unauthenticated("algorithm HS256 not accepted")
		}
		if hdr.Kid != "" && j.keys != nil {
			// A kid that names a key of the JWKS binds the token to that
			// key's algorithm: HS256 under it is a confusion attempt.
			if _, err := j.keys.lookup(ctx, hdr.Kid); err == nil {
				return Identity{}, unauthenticated("HS256 token names a key of the jwks")
			} else if errors.Is(err, ErrUnavailable) {
				return Identity{}, err
			}
		}
		alg, key = jwa.HS256(), j.secret
	default:
		if j.keys == nil {
			return Identity{}, unauthenticated(fmt.Sprintf("algorithm %q not accepted", safeAlg(hdr.Alg)))
		}
		k, err := j.keys.lookup(ctx, hdr.Kid)
		if err != nil {
			return Identity{}, err
		}
		if k.alg.String() != hdr.Alg {
			return Identity{}, unauthenticated(fmt.Sprintf("algorithm %q does not match the key's %s", safeAlg(hdr.Alg), k.alg))
		}
		alg, key = k.alg, k.key
	}

	opts := []jwt.ParseOption{
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(j.now)),
		jwt.WithAcceptableSkew(j.leeway),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
	}
	if j.issuer != "" {
		opts = append(opts, jwt.WithIssuer(j.issuer))
	}
	if j.audience != "" {
		opts = append(opts, jwt.WithAudience(j.audience))
	}
	t, err := jwt.Parse([]byte(token), opts...)
	if err != nil {
		return Identity{}, classify(err)
	}
	sub, _ := t.Subject()
	if sub == "" {
		return Identity{}, unauthenticated("token has no subject")
	}
	id := Identity{User: sub}
	if j.tierClaim != "" {
		tier, err := claimString(t, j.tierClaim)
		if err != nil {
			return Identity{}, err
		}
		id.Tier = tier
	}
	return id, nil
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parseHeader reads the protected header of a compact JWS without trusting
// it: it only selects the key source, whose own algorithm is then enforced.
func parseHeader(token string) (jwsHeader, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwsHeader{}, unauthenticated("malformed token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return jwsHeader{}, unauthenticated("malformed token header")
	}
	var h jwsHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return jwsHeader{}, unauthenticated("malformed token header")
	}
	return h, nil
}

// classify maps a jwx validation error to a refusal with a stable reason.
func classify(err error) error {
	reason := "invalid token"
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		reason = "token expired"
	case errors.Is(err, jwt.TokenNotYetValidError()):
		reason = "token not yet valid"
	case errors.Is(err, jwt.InvalidIssuerError()):
		reason = "wrong issuer"
	case errors.Is(err, jwt.InvalidAudienceError()):
		reason = "wrong audience"
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		reason = "token issued in the future"
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		reason = "missing required claim"
	}
	return &reasonError{base: ErrUnauthenticated, reason: reason, cause: err}
}

// claimString reads a string claim, walking dotted names into objects.
func claimString(t jwt.Token, name string) (string, error) {
	var v any
	if err := t.Get(name, &v); err != nil {
		first, rest, nested := strings.Cut(name, ".")
		if !nested || t.Get(first, &v) != nil {
			return "", nil // no tier claim: the caller's default tier applies
		}
		for _, seg := range strings.Split(rest, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return "", nil
			}
			if v, ok = m[seg]; !ok {
				return "", nil
			}
		}
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	default:
		return "", unauthenticated("tier claim is not a string")
	}
}

// safeAlg bounds an attacker-chosen algorithm name before it enters an
// error message.
func safeAlg(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// LogValue keeps the HS256 secret out of logs.
func (c JWTConfig) LogValue() slog.Value {
	secret := "none"
	if c.HS256Secret != nil {
		secret = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("hs256_secret", secret),
		slog.String("jwks_file", c.JWKSFile),
		slog.String("jwks_url", c.JWKSURL),
		slog.String("issuer", c.Issuer),
		slog.String("audience", c.Audience),
		slog.String("tier_claim", c.TierClaim),
	)
}
