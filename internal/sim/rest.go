package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

const maxRESTBody = 1 << 20

// apiError is OpenAI's HTTP error envelope body.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Param   *string `json:"param"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, typ, code, msg string) {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	writeJSON(w, status, map[string]apiError{"error": e})
}

func writeBadKey(w http.ResponseWriter) {
	writeAPIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
		"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serverKey authorizes a REST call that needs a standard (non-ephemeral) key.
func (s *Server) serverKey(w http.ResponseWriter, r *http.Request) bool {
	info, err := s.Authorize(r.Header.Get("Authorization"))
	if err != nil || info.Ephemeral {
		writeBadKey(w)
		return false
	}
	return true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRESTBody))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", "Could not read the request body.")
		return false
	}
	if len(body) == 0 {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "We could not parse the JSON body of your request.")
		return false
	}
	return true
}

// mint registers a new ek_ key bound to the GA session config cfg.
func (s *Server) mint(cfg *sessionConfig, ttl time.Duration) (string, time.Time) {
	value := "ek_" + randHex(16)
	exp := s.now().Add(ttl)
	raw, _ := json.Marshal(cfg.ga)
	s.mu.Lock()
	for k, v := range s.ephemera { // forget expired keys so the map stays small
		if !s.now().Before(v.expires) {
			delete(s.ephemera, k)
		}
	}
	s.ephemera[value] = ephemeralKey{expires: exp, session: raw}
	s.mu.Unlock()
	return value, exp
}

func ttlSeconds(w http.ResponseWriter, seconds *int, def int, param string) (time.Duration, bool) {
	n := def
	if seconds != nil {
		n = *seconds
	}
	if n < 10 || n > 7200 {
		writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value",
			"Invalid '"+param+"': must be between 10 and 7200.")
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// serveClientSecrets is POST /v1/realtime/client_secrets (GA).
func (s *Server) serveClientSecrets(w http.ResponseWriter, r *http.Request) {
	if !s.serverKey(w, r) {
		return
	}
	var req struct {
		ExpiresAfter *struct {
			Anchor  string `json:"anchor"`
			Seconds *int   `json:"seconds"`
		} `json:"expires_after"`
		Session json.RawMessage `json:"session"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	var secs *int
	if req.ExpiresAfter != nil {
		if req.ExpiresAfter.Anchor != "" && req.ExpiresAfter.Anchor != "created_at" {
			writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", "Invalid 'expires_after.anchor': only 'created_at' is supported.")
			return
		}
		secs = req.ExpiresAfter.Seconds
	}
	ttl, ok := ttlSeconds(w, secs, 600, "expires_after.seconds")
	if !ok {
		return
	}
	cfg := defaultConfig("")
	if len(req.Session) > 0 && string(req.Session) != "null" {
		if verr := cfg.update(req.Session, false, true); verr != nil {
			writeAPIError(w, http.StatusBadRequest, "invalid_request_error", verr.code, verr.msg)
			return
		}
	}
	value, exp := s.mint(cfg, ttl)
	writeJSON(w, http.StatusOK, map[string]any{
		"value":      value,
		"expires_at": exp.Unix(),
		"session":    cfg.view(false, realtime.NewID("sess_"), 0),
	})
}

// serveBetaSessions is POST /v1/realtime/sessions (beta).
func (s *Server) serveBetaSessions(w http.ResponseWriter, r *http.Request) {
	if !s.serverKey(w, r) {
		return
	}
	var raw map[string]json.RawMessage
	if !decodeBody(w, r, &raw) {
		return
	}
	var secs *int
	if cs, ok := raw["client_secret"]; ok {
		var c struct {
			ExpiresAfter struct {
				Seconds *int `json:"seconds"`
			} `json:"expires_after"`
		}
		_ = json.Unmarshal(cs, &c)
		secs = c.ExpiresAfter.Seconds
		delete(raw, "client_secret")
	}
	ttl, ok := ttlSeconds(w, secs, 60, "client_secret.expires_after.seconds")
	if !ok {
		return
	}
	cfg := defaultConfig("")
	body, _ := json.Marshal(raw)
	if verr := cfg.update(body, true, true); verr != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request_error", verr.code, verr.msg)
		return
	}
	value, exp := s.mint(cfg, ttl)
	view := cfg.view(true, realtime.NewID("sess_"), 0)
	view["client_secret"] = map[string]any{"value": value, "expires_at": exp.Unix()}
	writeJSON(w, http.StatusOK, view)
}

// LedgerTranscription is the Kind of a simulator ledger entry that bills an
// input audio transcription.
const LedgerTranscription = "transcription"

// TranscriptionResponseID is the ResponseID of the ledger entry of the
// transcription of item itemID: "transcription:<item_id>", as the gateway
// keys it.
func TranscriptionResponseID(itemID string) string { return LedgerTranscription + ":" + itemID }

// LedgerEntry is one response.done, or one input audio transcription
// (Kind "transcription"), as billed by the simulator.
type LedgerEntry struct {
	SessionID  string `json:"session_id"`
	ResponseID string `json:"response_id"`
	// Kind is "" for a response, LedgerTranscription for a transcription.
	Kind string `json:"kind,omitempty"`
	// ItemID is the transcribed input item (transcriptions only).
	ItemID string `json:"item_id,omitempty"`
	Model  string `json:"model"`
	Status string `json:"status"`
	// Usage is the response usage; for a transcription, its token usage
	// (output tokens as text), zero for a duration-billed one.
	Usage realtime.Usage `json:"usage"`
	// Transcription is the usage exactly as sent in the transcription's
	// completed event (transcriptions only).
	Transcription *realtime.TranscriptionUsage `json:"transcription_usage,omitempty"`
	// Instructions are those the response ran with (responses only), so
	// a test can tell which prompt the model got.
	Instructions string    `json:"instructions,omitempty"`
	At           time.Time `json:"at"`
}

// Flat is the entry's usage as the gateway's ledger stores it.
func (e LedgerEntry) Flat() store.Usage {
	if e.Transcription != nil {
		return e.Transcription.Flat()
	}
	return e.Usage.Flat()
}

type ledger struct {
	mu   sync.Mutex
	list []LedgerEntry
}

func (l *ledger) add(e LedgerEntry) {
	l.mu.Lock()
	l.list = append(l.list, e)
	l.mu.Unlock()
}

func (l *ledger) entries() []LedgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LedgerEntry(nil), l.list...)
}

func (l *ledger) clear() {
	l.mu.Lock()
	l.list = nil
	l.mu.Unlock()
}

func (s *Server) serveLedger(w http.ResponseWriter, r *http.Request) {
	list := s.ledger.entries()
	if list == nil {
		list = []LedgerEntry{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) serveLedgerClear(w http.ResponseWriter, r *http.Request) {
	s.ledger.clear()
	w.WriteHeader(http.StatusNoContent)
}
