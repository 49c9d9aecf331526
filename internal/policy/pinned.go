package policy

import (
	"encoding/json"
	"fmt"
)

// PinnedEventID is the event_id of the session.update that applies the
// pinned config upstream; an upstream error carrying it means the pinned
// config itself was refused.
const PinnedEventID = "event_vg_pinned_config"

// PinnedUpdate builds the session.update event the relay sends upstream
// right after connecting, before relaying any client event, so the config
// fixed at mint is in force whatever the client does. For a beta client
// (beta true) the config is converted with ToBeta.
func PinnedUpdate(pinned json.RawMessage, beta bool) ([]byte, error) {
	session := pinned
	if beta {
		var err error
		if session, err = ToBeta(pinned); err != nil {
			return nil, err
		}
	} else if err := checkJSON(pinned); err != nil {
		return nil, fmt.Errorf("policy: pinned config: %w", err)
	}
	return json.Marshal(struct {
		Type    string          `json:"type"`
		EventID string          `json:"event_id"`
		Session json.RawMessage `json:"session"`
	}{"session.update", PinnedEventID, session})
}
