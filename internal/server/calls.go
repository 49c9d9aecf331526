package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/store"
)

// maxOfferBytes bounds an SDP offer (a browser's is a few kilobytes).
const maxOfferBytes = 256 << 10

// handleCreateCall serves POST /v1/realtime/calls: a browser's SDP offer
// (Content-Type application/sdp) with its session token, admitted like a
// WebSocket connection, placed upstream with the server key and the
// session's pinned config, and governed through its sideband. The answer
// is 201 with the SDP answer and a Location on voicegate.
func handleCreateCall(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Calls == nil {
			writeError(w, r, s.Logger, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "upstream_unavailable", Message: "WebRTC calls are not configured."})
			return
		}
		var (
			sess  *store.Session
			offer []byte
			err   error
		)
		switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
		case "application/sdp": // a browser, with its session token
			if sess, err = s.admit(r); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
			if offer, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes)); err != nil {
				writeError(w, r, s.Logger, &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "sdp_too_large", Message: "The SDP offer is too large."})
				return
			}
		case "multipart/form-data": // an app backend, OpenAI's unified interface
			if sess, offer, err = s.mintForCall(w, r); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		default:
			writeError(w, r, s.Logger, &apiError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error", Code: "unsupported_media_type",
				Message: "Send the SDP offer with Content-Type: application/sdp and the session token as the Bearer key, or the multipart form (sdp, session) with an app key."})
			return
		}
		if !strings.HasPrefix(strings.TrimSpace(string(offer)), "v=0") {
			writeError(w, r, s.Logger, badRequest("invalid_sdp", "sdp", "The body is not an SDP offer."))
			return
		}
		holder, err := randomID(s.Rand, s.Instance+"/")
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		adm, err := s.Govern.Admit(r.Context(), sess, holder)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		answer, id, err := s.Calls.Create(r.Context(), calls.Request{Session: sess, Offer: offer, SafetyID: safetyID(sess.User), Admission: adm})
		if err != nil {
			var ue *calls.UpstreamError
			if errors.As(err, &ue) && ue.Status >= 400 && ue.Status < 500 && ue.Status != http.StatusUnauthorized && ue.Status != http.StatusForbidden {
				// The offer or config was refused: the client's to fix.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(ue.Status)
				_, _ = w.Write(ue.Body)
				return
			}
			s.Logger.Warn("call not placed", "session_id", sess.ID, "err", err)
			writeError(w, r, s.Logger, &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_unavailable", Message: "The upstream Realtime API could not place the call."})
			return
		}
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/v1/realtime/calls/"+id)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	})
}

// handleHangupCall serves POST /v1/realtime/calls/{id}/hangup for the
// session token that made the call.
func handleHangupCall(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Calls == nil {
			writeError(w, r, s.Logger, notFound("No such call."))
			return
		}
		sess, err := s.admit(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*s.LeaseTTL)
		defer cancel()
		switch err := s.Calls.Hangup(ctx, sess, r.PathValue("id")); {
		case errors.Is(err, calls.ErrNoSuchCall):
			writeError(w, r, s.Logger, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "call_id_not_found", Message: "No call with this id for this session."})
		case err != nil:
			s.Logger.Warn("call hangup failed", "session_id", sess.ID, "err", err)
			writeError(w, r, s.Logger, &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_unavailable", Message: "The upstream Realtime API could not end the call."})
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

// cors answers a browser's preflight for a route called cross-origin (the
// mint routes, calls) and marks its responses readable by an allowed
// origin, Location included (the Agents SDK reads the call id there). The
// credential is a Bearer header, never a cookie: no credentials mode.
func (s *Server) cors(next http.Handler) http.Handler {
	const allowHeaders = "Authorization, Content-Type, OpenAI-Safety-Identifier, OpenAI-Beta, X-OpenAI-Agents-SDK, OpenAI-Organization, OpenAI-Project"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && s.Config.OriginAllowed(origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Location")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", allowHeaders)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodOptions {
			writeError(w, r, s.Logger, forbidden("origin_not_allowed", "This origin is not allowed to call the gateway."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mintForCall serves the unified form of POST /v1/realtime/calls: an app
// backend (app key, admin key or a user login, as for a mint) posts the
// parts "sdp" and, optionally, "session" (a GA session config, validated
// and pinned like a mint's); the call gets a session of its own, minted
// for the user named by OpenAI-Safety-Identifier (else "anonymous").
func (s *Server) mintForCall(w http.ResponseWriter, r *http.Request) (*store.Session, []byte, error) {
	p, err := s.authenticate(r, "calls")
	if err != nil {
		return nil, nil, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, badRequest("invalid_body", "", "The body is not a multipart form.")
	}
	var offer, session []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, badRequest("invalid_body", "", "The multipart form could not be read.")
		}
		name := part.FormName()
		data, err := io.ReadAll(io.LimitReader(part, maxOfferBytes+1))
		part.Close()
		if err != nil || len(data) > maxOfferBytes {
			return nil, nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large", Message: "A part of the form is too large."}
		}
		switch name {
		case "sdp":
			offer = data
		case "session":
			session = data
		default:
			return nil, nil, badRequest("unknown_parameter", "", "Unknown form part: send sdp and session.")
		}
	}
	if offer == nil {
		return nil, nil, badRequest("missing_required_parameter", "sdp", "The form has no sdp part.")
	}
	req := &mintRequest{Session: session}
	sess, _, err := s.mint(r, p, req)
	if err != nil {
		return nil, nil, err
	}
	return sess, offer, nil
}
