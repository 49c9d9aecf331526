package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

// model is one entry of GET /v1/models, in OpenAI's shape.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// handleModels answers GET /v1/models (and /v1/models/{model}) with the
// models the caller's tiers allow, in OpenAI's list shape, because OpenAI
// clients list models before they start. The admin key sees every tier's,
// an app key its tiers', a user login its tier's, a session token its
// session's tier's. created is when the gateway started: voicegate does not
// know when OpenAI released a model.
func handleModels(s *Server) http.Handler {
	created := s.Now().Unix()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tiers, err := s.callerTiers(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		var ids []string
		for _, t := range tiers {
			for _, m := range t.AllowedModels {
				if !slices.Contains(ids, m) {
					ids = append(ids, m)
				}
			}
		}
		if id := r.PathValue("model"); id != "" {
			if !slices.Contains(ids, id) {
				writeError(w, r, s.Logger, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found",
					Param: "model", Message: "The model '" + id + "' does not exist or you do not have access to it."})
				return
			}
			encode(w, http.StatusOK, model{ID: id, Object: "model", Created: created, OwnedBy: "system"})
			return
		}
		data := make([]model, 0, len(ids))
		for _, id := range ids {
			data = append(data, model{ID: id, Object: "model", Created: created, OwnedBy: "system"})
		}
		encode(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	})
}

// callerTiers resolves the tiers whose models the caller may use, through
// the governor: a session token's tier, or the tiers of the principal the
// admin key, an app key or a user login is.
func (s *Server) callerTiers(r *http.Request) ([]policy.Tier, error) {
	if raw := auth.BearerToken(r); strings.HasPrefix(raw, token.SessionPrefix) {
		if err := s.throttled(r, "models", raw); err != nil {
			return nil, err
		}
		sess, err := s.sessionOfToken(r, raw)
		if err != nil {
			return nil, err
		}
		return []policy.Tier{s.Govern.Tier(sess.Tier)}, nil
	}
	p, err := s.authenticate(r, "models")
	if err != nil {
		return nil, err
	}
	var names []string
	switch p.Kind {
	case auth.KindAdmin:
		for name := range s.Govern.Tiers {
			names = append(names, name)
		}
		slices.Sort(names)
	case auth.KindAppKey:
		names = p.AppKey.Tiers
	case auth.KindUser:
		names = []string{p.Tier}
	}
	if len(names) == 0 || names[0] == "" {
		names = []string{"default"}
	}
	// The default tier first: its first model is the default model.
	if i := slices.Index(names, "default"); i > 0 {
		names = append([]string{"default"}, slices.Delete(slices.Clone(names), i, i+1)...)
	}
	tiers := make([]policy.Tier, 0, len(names))
	for _, n := range names {
		tiers = append(tiers, s.Govern.Tier(n))
	}
	return tiers, nil
}

// sessionOfToken returns the session of a session token that may still be
// used (not expired, ended or revoked).
func (s *Server) sessionOfToken(r *http.Request, raw string) (*store.Session, error) {
	bad := unauthorized("invalid_api_key", "Incorrect session token provided.")
	tok, err := token.Parse(raw)
	if err != nil || !tok.IsSession() {
		s.refused(r, "models", "malformed", token.ID(raw))
		return nil, bad
	}
	sess, err := s.Store.SessionByTokenHash(r.Context(), tok.Hash())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.refused(r, "models", "unknown", tok.ID())
			return nil, bad
		}
		return nil, errStoreUnavailable
	}
	reason, err := s.sessionRefusal(r.Context(), sess)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		s.refused(r, "models", reason, tok.ID())
		return nil, bad
	}
	return sess, nil
}
