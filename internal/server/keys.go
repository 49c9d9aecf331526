package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

func handleCreateKey(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name  string   `json:"name"`
			Tiers []string `json:"tiers"`
		}
		if err := decode(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		req.Name = strings.TrimSpace(req.Name)
		if req.Name == "" {
			writeError(w, r, s.Logger, badRequest("missing_required_parameter", "name", "Missing required parameter: 'name'."))
			return
		}
		for i, t := range req.Tiers {
			if _, ok := s.Config.Tiers[t]; !ok {
				writeError(w, r, s.Logger, badRequest("invalid_value", "tiers", "Unknown tier '"+req.Tiers[i]+"'."))
				return
			}
		}
		tok, k, err := auth.CreateKey(r.Context(), s.Store, s.Rand, s.Now(), req.Name, req.Tiers)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.audit(r.Context(), store.AuditEntry{Kind: "key_create", AppKeyID: k.ID, Detail: map[string]any{"name": k.Name, "tiers": k.Tiers}})
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusCreated, map[string]any{"object": "voicegate.app_key", "id": k.ID, "name": k.Name, "tiers": k.Tiers,
			"hint": k.Hint, "created_at": k.CreatedAt.UTC(), "value": tok.Reveal()})
	})
}

func handleListKeys(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := onlyParams(r.URL.Query()); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		keys, err := s.Store.ListKeys(r.Context())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		// Newest first, as every operator list.
		slices.SortStableFunc(keys, func(a, b *store.AppKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
		if keys == nil {
			keys = []*store.AppKey{}
		}
		encode(w, http.StatusOK, map[string]any{"object": "list", "data": keys})
	})
}

func handleRevokeKey(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		now := s.Now().UTC()
		if err := s.Store.RevokeKey(r.Context(), id, now); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.audit(r.Context(), store.AuditEntry{Kind: "revoke", AppKeyID: id, Detail: map[string]any{"scope": "app_key"}})
		s.publish(r.Context(), store.Revocation{Kind: "app_key", ID: id, At: now})
		k, err := s.Store.Key(r.Context(), id)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		encode(w, http.StatusOK, k)
	})
}
