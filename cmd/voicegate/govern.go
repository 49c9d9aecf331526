package main

import (
	"fmt"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/login"
	"github.com/voicegate/voicegate/internal/policy"
)

// policyTiers are the configured tiers in the policy engine's model, for
// live-session governance (config.Tier.Policy; Validate checked them).
func policyTiers(cfg *config.Config) (map[string]policy.Tier, error) {
	out := make(map[string]policy.Tier, len(cfg.Tiers))
	for name, ct := range cfg.Tiers {
		t, err := ct.Policy(name)
		if err != nil {
			return nil, fmt.Errorf("tiers.%s.%w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// userLogin builds the end-user login hook of cfg (nil when none is
// configured).
func userLogin(cfg *config.Config) (auth.Login, error) {
	var l auth.Logins
	if cfg.Login.JWTEnabled() {
		jc := login.JWTConfig{
			JWKSFile: cfg.Login.JWKSFile, JWKSURL: cfg.Login.JWKSURL,
			Issuer: cfg.Login.JWTIssuer, Audience: cfg.Login.JWTAudience, TierClaim: cfg.Login.JWTTierClaim,
		}
		if cfg.Login.JWTHS256Secret != "" {
			jc.HS256Secret = []byte(cfg.Login.JWTHS256Secret.Reveal())
		}
		j, err := login.NewJWT(jc)
		if err != nil {
			return nil, fmt.Errorf("end-user login: %w", err)
		}
		l.JWT = j
	}
	if cfg.Login.AuthWebhookURL != "" {
		w, err := login.NewWebhook(login.WebhookConfig{URL: cfg.Login.AuthWebhookURL})
		if err != nil {
			return nil, fmt.Errorf("end-user login: %w", err)
		}
		l.Webhook = w
	}
	if l.JWT == nil && l.Webhook == nil {
		return nil, nil
	}
	return l, nil
}
