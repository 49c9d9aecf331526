package main

import (
	"fmt"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/login"
)

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
