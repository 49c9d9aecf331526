package govern

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/policy"
	"github.com/voicegate/voicegate/internal/realtime"
)

// A WebRTC call's events travel between the browser and upstream on the
// call's data channel: the governor never sees the client's events, only
// upstream's, through the sideband (?call_id=) the gateway attaches with
// the server key. So it governs after the fact where it must:
//
//   - The call is created with CallConfig: the pinned config with turn
//     detection mediated, so VAD turns are reserved like any other.
//   - A session.updated showing a locked field the mint pinned changed, or
//     turn detection creating responses again, is corrected at once with a
//     session.update on the sideband (at most maxCorrections in a row; a
//     client that keeps changing them ends the call with
//     session_config_locked).
//   - A response the client started itself (a response.create on the data
//     channel, e.g. after a tool call) reserves its bound when upstream
//     creates it; one the budget cannot cover in full is cancelled at once.
//     Its cost until the cancel lands is the margin of such responses.

// maxCorrections bounds consecutive corrections of one call's config.
const maxCorrections = 3

// defaultTurnDetection is the upstream's turn detection of a session that
// names none (protocol §4.5), made explicit so it can be mediated.
var defaultTurnDetection = json.RawMessage(`{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,"create_response":true,"interrupt_response":true}`)

// CallConfig returns the GA session config a call is created with upstream
// (the multipart "session" part): the pinned config, with turn detection
// that would create responses mediated, the upstream default made explicit
// when the mint left it unset.
func (s *Session) CallConfig() (json.RawMessage, error) {
	cfg := map[string]json.RawMessage{}
	if len(s.rec.Config) > 0 {
		if err := json.Unmarshal(policy.UpstreamConfig(s.rec.Config), &cfg); err != nil {
			return nil, fmt.Errorf("pinned config: %w", err)
		}
	}
	if cfg == nil {
		cfg = map[string]json.RawMessage{}
	}
	if _, ok := cfg["type"]; !ok {
		cfg["type"] = json.RawMessage(`"realtime"`)
	}
	if !isTranscription(cfg) {
		td, set := getPath(cfg, tdPath(false)...)
		if !set {
			td = defaultTurnDetection
		}
		if mediated, ok := mediatedTD(td); ok {
			setPath(cfg, mediated, tdPath(false)...)
			s.mu.Lock()
			s.vad.mediate = true
			s.mu.Unlock()
		}
	}
	return mustJSON(cfg), nil
}

// lockedPaths are the dotted GA paths whose pinned values a sideband
// keeps: the pinnable fields and those the session's tier locks.
func (s *Session) lockedPaths() []string {
	locked := s.tier.LockedFields
	if locked == nil {
		locked = policy.DefaultLockedFields
	}
	return append(slices.Clone(policy.PinnableFields), locked...)
}

// correction returns the session.update members that put a sideband
// session object back in line (locked fields the mint pinned, mediated
// turn detection), keyed by dotted path; nil when nothing is off. s.mu is
// held.
func (s *Session) correctionLocked(session map[string]json.RawMessage) map[string]json.RawMessage {
	pinned := decodeObject(s.rec.Config)
	fix := map[string]json.RawMessage{}
	// A handoff to an agent the mint pinned is the client's to make.
	switched := policy.AgentSwitch(s.rec.Config, mustJSON(session))
	for _, p := range s.lockedPaths() {
		if switched && (p == "instructions" || p == "tools") {
			continue
		}
		path := strings.Split(p, ".")
		want, ok := getPath(pinned, path...)
		if !ok {
			continue // the mint left it open
		}
		got, ok := getPath(session, path...)
		if !ok || !sameJSON(got, want) {
			fix[p] = want
		}
	}
	if td, ok := getPath(session, tdPath(false)...); ok {
		if mediated, on := mediatedTD(td); on {
			fix["audio.input.turn_detection"] = mediated
			s.vad.mediate = true
		} else if string(td) == "null" {
			s.vad.mediate = false
			s.vad.waiting = 0
		}
	}
	if len(fix) == 0 {
		return nil
	}
	return fix
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// correct sends the correction of a sideband session object, if any.
func (s *Session) correct(ctx context.Context, session map[string]json.RawMessage) {
	s.mu.Lock()
	fix := s.correctionLocked(session)
	if fix == nil {
		s.corrections = 0
		s.mu.Unlock()
		return
	}
	s.corrections++
	n := s.corrections
	s.mu.Unlock()
	paths := make([]string, 0, len(fix))
	for p := range fix {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if n > maxCorrections {
		s.g.audit(ctx, s.rec, "refusal", map[string]any{"code": policy.CodeConfigLocked, "fields": paths, "sideband": true})
		s.end(&Refusal{Code: policy.CodeConfigLocked, Fatal: true, Message: "the session config was changed against its pinned values"})
		return
	}
	upd := map[string]json.RawMessage{"type": json.RawMessage(`"realtime"`)}
	for _, p := range paths {
		setPath(upd, fix[p], strings.Split(p, ".")...)
	}
	frame := mustJSON(map[string]any{"type": realtime.TypeSessionUpdate, "event_id": realtime.NewID("vg_fix_"), "session": upd})
	s.g.audit(ctx, s.rec, "correction", map[string]any{"fields": paths, "sideband": true})
	if err := s.h.Upstream(ctx, frame); err != nil {
		s.g.logger().Warn("sideband correction not sent", "session_id", s.rec.ID, "err", err)
	}
}

// adoptClientResponse reserves for a response the client started on the
// data channel; it reports false (and the caller cancels it) when the
// budget cannot cover its whole bound. s.mu is not held.
func (s *Session) adoptClientResponse(ctx context.Context, r *reservation) bool {
	accounts := Accounts(s.rec, s.tier, s.g.now())
	if len(accounts) == 0 {
		return true
	}
	s.mu.Lock()
	in := s.inputLocked()
	s.seq++
	id := fmt.Sprintf("%s/c%d", s.rec.ID, s.seq)
	s.mu.Unlock()
	want := s.g.prices().MaxCost(s.rec.Model, r.maxOut, in)
	res, local, ref := s.hold(ctx, id, accounts, want, want, "")
	if ref != nil || res.Granted == 0 {
		s.g.Metrics.Refused("budget", s.tier.Name, s.rec.Model)
		s.g.audit(ctx, s.rec, "limit", map[string]any{"limit": "budget", "sideband": true, "remaining_nanousd": res.Remaining})
		return false
	}
	s.mu.Lock()
	r.id, r.local, r.granted, r.accounts = id, local, res.Granted, accounts
	s.mu.Unlock()
	s.g.Metrics.reservedAdd(s.tier.Name, s.rec.Model, res.Granted)
	return true
}
