package server

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

type mintStyle int

const (
	mintOpenAI mintStyle = iota // POST /v1/realtime/client_secrets
	mintSeed                    // POST /api/voice/session
)

// mintRequest is OpenAI's client_secrets request plus voicegate's
// extensions (user, tier, limits).
type mintRequest struct {
	ExpiresAfter *struct {
		Anchor  *string `json:"anchor"`
		Seconds *int    `json:"seconds"`
	} `json:"expires_after"`
	Session json.RawMessage `json:"session"`
	User    string          `json:"user"`
	Tier    string          `json:"tier"`
	Limits  json.RawMessage `json:"limits"`
}

// limitsJSON is the public shape of store.Limits (budget in USD).
type limitsJSON struct {
	MaxSessionSeconds  *int     `json:"max_session_seconds,omitempty"`
	IdleTimeoutSeconds *int     `json:"idle_timeout_seconds,omitempty"`
	BudgetUSD          *float64 `json:"budget_usd,omitempty"`
	MaxConcurrent      *int     `json:"max_concurrent,omitempty"`
}

func publicLimits(l store.Limits) map[string]any {
	return map[string]any{
		"max_session_seconds":  l.MaxSessionSeconds,
		"idle_timeout_seconds": l.IdleTimeoutSeconds,
		"budget_usd":           float64(l.BudgetNanoUSD) / 1e9,
		"max_concurrent":       l.MaxConcurrent,
	}
}

// Session fields a client_secrets request may carry, by session type
// (GA shapes of the protocol notes §4.5).
var sessionFields = map[string][]string{
	"realtime": {"type", "model", "instructions", "audio", "output_modalities", "tools", "tool_choice",
		"max_output_tokens", "tracing", "truncation", "prompt", "include", "temperature"},
	"transcription": {"type", "audio", "include"},
}

const safetyHeader = "OpenAI-Safety-Identifier"

// handleMint serves both mint routes: same auth and policy, two response
// shapes.
func handleMint(s *Server, style mintStyle) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, "mint")
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		var req mintRequest
		if err := decode(w, r, &req); err != nil {
			s.metrics.mints.WithLabelValues("unknown", "invalid").Inc()
			writeError(w, r, s.Logger, err)
			return
		}
		sess, tok, err := s.mint(r, p, &req)
		if err != nil {
			outcome := "invalid"
			if toAPIError(err).Status >= 500 {
				outcome = "error"
			}
			s.metrics.mints.WithLabelValues(tierLabel(s.Config, req.Tier), outcome).Inc()
			writeError(w, r, s.Logger, err)
			return
		}
		s.metrics.mints.WithLabelValues(sess.Tier, "ok").Inc()
		w.Header().Set("Cache-Control", "no-store")
		if style == mintSeed {
			encode(w, http.StatusCreated, map[string]any{
				"sessionToken": tok.Reveal(),
				"expiresIn":    int(sess.ExpiresAt.Sub(sess.CreatedAt).Seconds()),
				"expiresAt":    sess.ExpiresAt.Unix(),
				"sessionId":    sess.ID,
				"model":        sess.Model,
			})
			return
		}
		encode(w, http.StatusOK, mintResponse(sess, tok))
	})
}

// tierLabel keeps metric labels bounded to configured tier names.
func tierLabel(c *config.Config, tier string) string {
	if tier == "" {
		return "default"
	}
	if _, ok := c.Tiers[tier]; ok {
		return tier
	}
	return "unknown"
}

func mintResponse(sess *store.Session, tok token.Token) map[string]any {
	var cfg map[string]any
	_ = json.Unmarshal(sess.Config, &cfg) // validated at mint
	if cfg == nil {
		cfg = map[string]any{}
	}
	obj := "realtime.session"
	if cfg["type"] == "transcription" {
		obj = "realtime.transcription_session"
	}
	cfg["object"] = obj
	cfg["id"] = sess.ID
	cfg["expires_at"] = 0
	return map[string]any{
		"value":      tok.Reveal(),
		"expires_at": sess.ExpiresAt.Unix(),
		"session":    cfg,
		"voicegate": map[string]any{
			"session_id": sess.ID,
			"user":       sess.User,
			"tier":       sess.Tier,
			"limits":     publicLimits(sess.Limits),
		},
	}
}

// mint validates the request against the caller and tier, stores the
// session (token hash only) and audits it.
func (s *Server) mint(r *http.Request, p auth.Principal, req *mintRequest) (*store.Session, token.Token, error) {
	tierName, err := pickTier(p, req.Tier)
	if err != nil {
		return nil, "", err
	}
	tier, ok := s.Config.Tiers[tierName]
	if !ok {
		return nil, "", badRequest("invalid_value", "tier", fmt.Sprintf("Unknown tier '%s'.", tierName))
	}
	ttl, err := expiry(req, tier)
	if err != nil {
		return nil, "", err
	}
	cfg, model, err := pinnedConfig(req.Session, tier)
	if err != nil {
		return nil, "", err
	}
	var reqLimits *limitsJSON
	if len(req.Limits) > 0 && string(req.Limits) != "null" {
		reqLimits = &limitsJSON{}
		if err := decodeStrict(req.Limits, reqLimits, "limits."); err != nil {
			return nil, "", err
		}
	}
	limits, err := tighten(tier, reqLimits)
	if err != nil {
		return nil, "", err
	}
	user := p.User
	if p.Kind != auth.KindUser {
		user = strings.TrimSpace(req.User)
		if user == "" {
			user = strings.TrimSpace(r.Header.Get(safetyHeader))
		}
		if user == "" {
			user = "anonymous"
		}
	} else if req.User != "" && req.User != p.User {
		return nil, "", badRequest("invalid_value", "user", "A signed-in user cannot mint for another user.")
	}
	if len(user) > 256 {
		return nil, "", badRequest("invalid_value", "user", "user is longer than 256 characters.")
	}
	if err := s.Store.Ping(r.Context()); err != nil {
		return nil, "", fmt.Errorf("mint: %w: %w", store.ErrUnavailable, err)
	}
	if err := s.governMint(r.Context(), tierName, model, user, p.AppKeyID()); err != nil {
		return nil, "", err
	}

	tok, err := token.NewSession(s.Rand)
	if err != nil {
		return nil, "", fmt.Errorf("mint: %w", err)
	}
	id, err := randomID(s.Rand, "vgs_")
	if err != nil {
		return nil, "", err
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	sess := &store.Session{
		ID:        id,
		TokenHash: tok.Hash(),
		TokenID:   tok.ID(),
		User:      user,
		Tier:      tierName,
		AppKeyID:  p.AppKeyID(),
		Model:     model,
		Config:    cfg,
		Limits:    limits,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
		State:     store.StateMinted,
	}
	if err := s.Store.CreateSession(r.Context(), sess); err != nil {
		return nil, "", fmt.Errorf("mint: store session: %w", err)
	}
	s.audit(r.Context(), store.AuditEntry{Kind: "mint", SessionID: sess.ID, User: user, AppKeyID: sess.AppKeyID, Tier: tierName,
		Detail: map[string]any{"token_id": sess.TokenID, "model": model, "by": string(p.Kind), "expires_at": sess.ExpiresAt.Unix(),
			"limits": publicLimits(limits)}})
	s.Logger.InfoContext(r.Context(), "session minted", "session_id", sess.ID, "token", tok, "tier", tierName, "by", string(p.Kind), "app_key_id", sess.AppKeyID)
	return sess, tok, nil
}

// pickTier decides the tier: app keys may mint for their listed tiers
// (none listed = default only), users get their login's tier, the admin any.
func pickTier(p auth.Principal, requested string) (string, error) {
	switch p.Kind {
	case auth.KindUser:
		own := p.Tier
		if own == "" {
			own = "default"
		}
		if requested != "" && requested != own {
			return "", forbidden("tier_not_allowed", "A signed-in user cannot choose another tier.")
		}
		return own, nil
	case auth.KindAppKey:
		if requested == "" {
			if len(p.AppKey.Tiers) > 0 {
				return p.AppKey.Tiers[0], nil
			}
			return "default", nil
		}
		allowed := p.AppKey.Tiers
		if len(allowed) == 0 {
			allowed = []string{"default"}
		}
		if !slices.Contains(allowed, requested) {
			return "", forbidden("tier_not_allowed", fmt.Sprintf("This app key may not mint for tier '%s'.", requested))
		}
		return requested, nil
	}
	if requested == "" {
		return "default", nil
	}
	return requested, nil
}

func expiry(req *mintRequest, tier config.Tier) (time.Duration, error) {
	secs := tier.TTLDefaultSeconds
	if ea := req.ExpiresAfter; ea != nil {
		if ea.Anchor != nil && *ea.Anchor != "created_at" {
			return 0, badRequest("invalid_value", "expires_after.anchor", "Invalid value for 'expires_after.anchor': only 'created_at' is supported.")
		}
		if ea.Seconds != nil {
			secs = *ea.Seconds
			if secs < 10 || secs > 7200 {
				return 0, badRequest("integer_out_of_range", "expires_after.seconds",
					fmt.Sprintf("Invalid 'expires_after.seconds': %d is outside 10–7200.", secs))
			}
			if secs > tier.TTLMaxSeconds {
				return 0, badRequest("integer_out_of_range", "expires_after.seconds",
					fmt.Sprintf("Invalid 'expires_after.seconds': the tier allows at most %d.", tier.TTLMaxSeconds))
			}
		}
	}
	return time.Duration(secs) * time.Second, nil
}

// pinnedConfig validates the session object and returns it with type and
// model filled in: this is the configuration pinned upstream.
func pinnedConfig(raw json.RawMessage, tier config.Tier) (json.RawMessage, string, error) {
	fields := map[string]json.RawMessage{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, "", badRequest("invalid_type", "session", "Invalid type for 'session': expected an object.")
		}
	}
	typ := "realtime"
	if t, ok := fields["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil || (typ != "realtime" && typ != "transcription") {
			return nil, "", badRequest("invalid_value", "session.type", "Invalid value for 'session.type': expected 'realtime' or 'transcription'.")
		}
	}
	if typ == "transcription" && !tier.Transcription {
		return nil, "", forbidden("session_type_not_allowed", "This tier does not allow transcription sessions.")
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(sessionFields[typ], k) {
			return nil, "", badRequest("unknown_parameter", "session."+k, fmt.Sprintf("Unknown parameter: 'session.%s'.", k))
		}
	}
	model := ""
	if typ == "realtime" {
		model = tier.DefaultModel()
		if m, ok := fields["model"]; ok {
			if err := json.Unmarshal(m, &model); err != nil || model == "" {
				return nil, "", badRequest("invalid_type", "session.model", "Invalid type for 'session.model': expected a string.")
			}
		}
		if !tier.AllowsModel(model) {
			return nil, "", badRequest("model_not_allowed", "session.model",
				fmt.Sprintf("The model '%s' is not allowed for this tier (allowed: %s).", model, strings.Join(tier.Models, ", ")))
		}
		fields["model"], _ = json.Marshal(model)
	}
	fields["type"], _ = json.Marshal(typ)
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, "", fmt.Errorf("mint: encode session: %w", err)
	}
	return out, model, nil
}

// tighten applies the mint's limits over the tier's: each may only be
// stricter. A zero tier value means no limit, so any positive value
// tightens it; asking for 0 (no limit) or more than the tier is refused.
func tighten(tier config.Tier, req *limitsJSON) (store.Limits, error) {
	l := store.Limits{
		MaxSessionSeconds:  tier.MaxSessionSeconds,
		IdleTimeoutSeconds: tier.IdleTimeoutSeconds,
		BudgetNanoUSD:      usdToNano(tier.BudgetUSD),
		MaxConcurrent:      tier.MaxConcurrent,
	}
	if req == nil {
		return l, nil
	}
	check := func(param string, want, have int64) (int64, error) {
		if want <= 0 {
			return 0, badRequest("invalid_value", "limits."+param, fmt.Sprintf("Invalid 'limits.%s': must be greater than 0.", param))
		}
		if have > 0 && want > have {
			return 0, badRequest("limit_not_tighter", "limits."+param,
				fmt.Sprintf("Invalid 'limits.%s': limits may only tighten the tier's.", param))
		}
		return want, nil
	}
	var err error
	var v int64
	if req.MaxSessionSeconds != nil {
		if v, err = check("max_session_seconds", int64(*req.MaxSessionSeconds), int64(l.MaxSessionSeconds)); err != nil {
			return l, err
		}
		l.MaxSessionSeconds = int(v)
	}
	if req.IdleTimeoutSeconds != nil {
		if v, err = check("idle_timeout_seconds", int64(*req.IdleTimeoutSeconds), int64(l.IdleTimeoutSeconds)); err != nil {
			return l, err
		}
		l.IdleTimeoutSeconds = int(v)
	}
	if req.BudgetUSD != nil {
		b := *req.BudgetUSD
		if math.IsNaN(b) || math.IsInf(b, 0) || b > 1e9 {
			return l, badRequest("invalid_value", "limits.budget_usd", "Invalid 'limits.budget_usd'.")
		}
		if v, err = check("budget_usd", usdToNano(b), l.BudgetNanoUSD); err != nil {
			return l, err
		}
		l.BudgetNanoUSD = v
	}
	if req.MaxConcurrent != nil {
		if v, err = check("max_concurrent", int64(*req.MaxConcurrent), int64(l.MaxConcurrent)); err != nil {
			return l, err
		}
		l.MaxConcurrent = int(v)
	}
	return l, nil
}

func usdToNano(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// randomID returns prefix + 24 hex characters (96 random bits).
func randomID(rnd io.Reader, prefix string) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
