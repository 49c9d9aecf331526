package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/realtime"
)

// Server-VAD responses start upstream without a client response.create, so
// they cannot be clamped one by one. Instead the governor holds a standing
// reservation while turn detection is on and pins the session's
// max_output_tokens upstream to what that reservation covers; it does this
// before forwarding any audio, so the response the audio triggers is
// bounded by it. The response that starts without a pending client
// reservation takes the standing one, and the next audio reserves anew.

// turnDetectionOn reports whether a GA session config leaves the server's
// turn detection on (absent means the upstream default, server_vad).
func turnDetectionOn(cfg json.RawMessage) bool {
	var c struct {
		Type  string `json:"type"`
		Audio *struct {
			Input *struct {
				TurnDetection *json.RawMessage `json:"turn_detection"`
			} `json:"input"`
		} `json:"audio"`
	}
	if json.Unmarshal(cfg, &c) != nil || c.Type == "transcription" {
		return false
	}
	if c.Audio == nil || c.Audio.Input == nil || c.Audio.Input.TurnDetection == nil {
		return true
	}
	return string(*c.Audio.Input.TurnDetection) != "null"
}

// updateTurnDetection reads the turn_detection a GA session.update sets:
// on, and whether it sets it at all.
func updateTurnDetection(frame []byte) (on, set bool) {
	var ev struct {
		Session struct {
			Audio *struct {
				Input *struct {
					TurnDetection *json.RawMessage `json:"turn_detection"`
				} `json:"input"`
			} `json:"audio"`
			TurnDetection *json.RawMessage `json:"turn_detection"` // beta
		} `json:"session"`
	}
	if json.Unmarshal(frame, &ev) != nil {
		return false, false
	}
	td := ev.Session.TurnDetection
	if a := ev.Session.Audio; a != nil && a.Input != nil && a.Input.TurnDetection != nil {
		td = a.Input.TurnDetection
	}
	if td == nil {
		return false, false
	}
	return string(*td) != "null", true
}

// standing makes sure a standing reservation covers the next server-VAD
// response before audio is forwarded. It returns a refusal (and closes an
// exhausted session) when the budget cannot afford one.
func (v *governor) standing(ctx context.Context, eventID string) []byte {
	v.mu.Lock()
	if !v.vad || v.stand.id != "" || v.upstream == nil {
		v.mu.Unlock()
		return nil
	}
	v.mu.Unlock()
	v.awaitSettling(ctx)
	v.mu.Lock()
	if v.stand.id != "" {
		v.mu.Unlock()
		return nil
	}
	maxOut := v.sessionMaxOut
	if maxOut == 0 {
		maxOut = v.defaultMaxOut()
	}
	in := v.base + v.added - v.baseAdded + v.inFlightOut()
	added := v.added
	v.seq++
	id := fmt.Sprintf("%s/s%d", v.rec.ID, v.seq)
	pinned := v.pinnedOut
	send := v.upstream
	v.mu.Unlock()

	accounts := Accounts(v.rec, v.tier, v.g.now())
	if len(accounts) == 0 {
		return nil
	}
	tab, model := v.g.prices(), v.rec.Model
	want := tab.MaxCost(model, maxOut, in)
	minOut := min(v.minOut(), maxOut)
	res, local, refusal := v.hold(ctx, id, accounts, want, tab.MaxCost(model, minOut, in), eventID)
	if refusal != nil {
		return refusal
	}
	if res.Granted == 0 {
		v.g.Metrics.Refused("budget", v.tier.Name, model)
		if !local && v.exhausted(ctx, accounts, in) {
			v.close(CodeBudgetExceeded, "the budget is spent")
		}
		return realtime.ErrorEvent(CodeBudgetExceeded, "the remaining budget cannot afford a response", eventID)
	}
	covered := maxOut
	if res.Granted < want {
		covered = max(tab.MaxOutputTokensFor(model, res.Granted, in), minOut)
		v.g.Metrics.clamp(v.tier.Name, model)
	}
	v.g.Metrics.reservedAdd(v.tier.Name, model, res.Granted)
	if local {
		v.g.Metrics.localGrant(v.tier.Name, model)
	}
	r := reservation{id: id, added: added, local: local, granted: res.Granted, accounts: accounts, maxOut: covered}
	if covered != pinned {
		upd := `{"type":"session.update","event_id":"` + realtime.NewID("vg_budget_") + `","session":{`
		if !v.fw.Beta {
			upd += `"type":"realtime",`
		}
		key := "max_output_tokens"
		if v.fw.Beta {
			key = "max_response_output_tokens"
		}
		upd += strconv.Quote(key) + ":" + strconv.Itoa(covered) + "}}"
		if err := send(ctx, []byte(upd)); err != nil {
			v.releaseHold(ctx, r)
			return realtime.ErrorEvent(CodeGovernUnavailable, "the gateway cannot pin the response bound", eventID)
		}
	}
	v.mu.Lock()
	v.stand = r
	v.pinnedOut = covered
	v.mu.Unlock()
	return nil
}

// isAudio reports whether an event feeds the server's turn detection.
func isAudio(eventType string) bool {
	return eventType == "input_audio_buffer.append" || strings.HasPrefix(eventType, "input_audio_buffer.commit")
}
