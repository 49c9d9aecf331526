package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/policy"
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
	// Agents are agent configurations (instructions and tool names) the
	// client may switch among (Agents SDK handoffs); see policy.Agent.
	Agents json.RawMessage `json:"agents"`
}

func publicLimits(l store.Limits) map[string]any {
	return map[string]any{
		"max_session_seconds":  l.MaxSessionSeconds,
		"idle_timeout_seconds": l.IdleTimeoutSeconds,
		"budget_usd":           float64(l.BudgetNanoUSD) / 1e9,
		"max_concurrent":       l.MaxConcurrent,
	}
}

const safetyHeader = "OpenAI-Safety-Identifier"

// handleMint serves both mint routes: same auth and policy, two response
// shapes.
func handleMint(s *Server, style mintStyle) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A browser's mint (a cookie login) comes only from an allowed
		// origin; server-to-server calls send no Origin.
		if !s.Config.OriginAllowed(r.Header.Get("Origin")) {
			writeError(w, r, s.Logger, forbidden("origin_not_allowed", "This origin is not allowed to mint."))
			return
		}
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

func mintResponse(sess *store.Session, tok token.Token) mintBody {
	var cfg map[string]any
	_ = json.Unmarshal(policy.UpstreamConfig(sess.Config), &cfg) // validated at mint
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
	l := sess.Limits
	return mintBody{
		Value:     tok.Reveal(),
		ExpiresAt: sess.ExpiresAt.Unix(),
		Session:   cfg,
		Voicegate: mintVoicegate{SessionID: sess.ID, User: sess.User, Tier: sess.Tier, Limits: limitsView{
			MaxSessionSeconds: l.MaxSessionSeconds, IdleTimeoutSeconds: l.IdleTimeoutSeconds,
			BudgetUSD: float64(l.BudgetNanoUSD) / 1e9, MaxConcurrent: l.MaxConcurrent,
		}},
	}
}

// mintBody is the mint's answer: OpenAI's client secret shape plus the
// gateway's own section. Structs, not maps: a mint encodes without
// sorting keys.
type mintBody struct {
	Value     string         `json:"value"`
	ExpiresAt int64          `json:"expires_at"`
	Session   map[string]any `json:"session"`
	Voicegate mintVoicegate  `json:"voicegate"`
}

type mintVoicegate struct {
	SessionID string     `json:"session_id"`
	User      string     `json:"user"`
	Tier      string     `json:"tier"`
	Limits    limitsView `json:"limits"`
}

// limitsView is publicLimits as a struct.
type limitsView struct {
	MaxSessionSeconds  int     `json:"max_session_seconds"`
	IdleTimeoutSeconds int     `json:"idle_timeout_seconds"`
	BudgetUSD          float64 `json:"budget_usd"`
	MaxConcurrent      int     `json:"max_concurrent"`
}

// mint validates the request against the caller and tier, stores the
// session (token hash only) and audits it.
func (s *Server) mint(r *http.Request, p auth.Principal, req *mintRequest) (*store.Session, token.Token, error) {
	tierName, err := pickTier(p, req.Tier)
	if err != nil {
		return nil, "", err
	}
	tier, ok := s.tier(tierName)
	if !ok {
		return nil, "", badRequest("invalid_value", "tier", fmt.Sprintf("Unknown tier '%s'.", tierName))
	}
	ttl, err := tokenTTL(req, tier)
	if err != nil {
		return nil, "", err
	}
	cfg, model, err := tier.ValidateSessionConfig(req.Session)
	if err != nil {
		return nil, "", fieldError(tier, err)
	}
	if raw := bytes.TrimSpace(req.Agents); len(raw) > 0 && string(raw) != "null" {
		agents, err := policy.ParseAgents(raw)
		if err != nil {
			return nil, "", fieldError(tier, err)
		}
		if cfg, err = policy.WithAgents(cfg, agents); err != nil {
			return nil, "", fmt.Errorf("mint: %w", err)
		}
	}
	var reqLimits policy.MintLimits
	if raw := bytes.TrimSpace(req.Limits); len(raw) > 0 && string(raw) != "null" {
		if raw[0] != '{' {
			return nil, "", badRequest("invalid_type", "limits", "Invalid type for 'limits': expected an object.")
		}
		if err := decodeStrict(raw, &reqLimits, "limits."); err != nil {
			return nil, "", err
		}
	}
	limits, err := tier.Narrow(reqLimits)
	if err != nil {
		return nil, "", fieldError(tier, err)
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
	if err := s.Govern.AdmitMint(r.Context(), tierName, model, user, p.AppKeyID()); err != nil {
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
		Detail: map[string]any{"token_id": sess.TokenID, "model": model, "by": string(p.Kind), "expires_at": sess.ExpiresAt.UTC().Format(time.RFC3339),
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

// tier resolves a tier name to the policy that governs it, for the mint
// as for the live session: the governor's tier. ok is false when no such
// tier is configured.
func (s *Server) tier(name string) (policy.Tier, bool) {
	if _, ok := s.Govern.Tiers[name]; !ok {
		return policy.Tier{}, false
	}
	return s.Govern.Tier(name), true
}

// tokenTTL is the connect deadline of the token: expires_after (anchor
// created_at only) within the tier's bounds.
func tokenTTL(req *mintRequest, tier policy.Tier) (time.Duration, error) {
	var secs *int
	if ea := req.ExpiresAfter; ea != nil {
		if ea.Anchor != nil && *ea.Anchor != "created_at" {
			return 0, badRequest("invalid_value", "expires_after.anchor", "Invalid value for 'expires_after.anchor': only 'created_at' is supported.")
		}
		secs = ea.Seconds
	}
	ttl, err := tier.TokenTTL(secs)
	if err != nil {
		return 0, fieldError(tier, err)
	}
	return ttl, nil
}

// fieldError maps a policy refusal to the OpenAI error envelope (400
// invalid_request_error with param and code). policy's generic not_allowed
// becomes the specific code clients rely on: model_not_allowed,
// voice_not_allowed, limit_not_tighter, integer_out_of_range (also for
// expires_after.seconds outside 10–7200) and, as a 403,
// session_type_not_allowed. Errors other than *policy.FieldError pass
// through (a 500 for the client).
func fieldError(tier policy.Tier, err error) error {
	var fe *policy.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	code, status := fe.Code, http.StatusBadRequest
	msg := fmt.Sprintf("Invalid '%s': %s.", fe.Param, fe.Message)
	switch {
	case fe.Code == policy.CodeUnknownParameter:
		msg = fmt.Sprintf("Unknown parameter: '%s'.", fe.Param)
	case fe.Code == policy.CodeMissingParameter:
		msg = fmt.Sprintf("Missing required parameter: '%s'.", fe.Param)
	case fe.Param == "expires_after.seconds":
		code = "integer_out_of_range"
	case fe.Code != policy.CodeNotAllowed:
		// invalid_type, invalid_value: policy's code as is.
	case fe.Param == "session.model":
		code = "model_not_allowed"
		if len(tier.AllowedModels) > 0 {
			msg = fmt.Sprintf("Invalid 'session.model': %s (allowed: %s).", fe.Message, strings.Join(tier.AllowedModels, ", "))
		}
	case fe.Param == "session.audio.output.voice":
		code = "voice_not_allowed"
		if len(tier.AllowedVoices) > 0 {
			msg = fmt.Sprintf("Invalid 'session.audio.output.voice': %s (allowed: %s).", fe.Message, strings.Join(tier.AllowedVoices, ", "))
		}
	case fe.Param == "session.type":
		code, status = "session_type_not_allowed", http.StatusForbidden
		msg = "This tier does not allow transcription sessions."
	case strings.HasPrefix(fe.Param, "limits."):
		code = "limit_not_tighter"
	}
	return &apiError{Status: status, Type: "invalid_request_error", Code: code, Param: fe.Param, Message: msg}
}

// randomID returns prefix + 24 hex characters (96 random bits).
func randomID(rnd io.Reader, prefix string) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
