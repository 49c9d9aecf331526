package server

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// States are the states of a session, in its usual order of life.
var States = []string{store.StateMinted, store.StateLive, store.StateIdle, store.StateEnded, store.StateRevoked}

// StatesHelp names the states for help texts and errors.
var StatesHelp = strings.Join(States, ", ")

// onlyParams refuses a query parameter not in allowed: a misspelt filter
// (?usr=alice) must not silently return everything.
func onlyParams(q url.Values, allowed ...string) error {
	for name := range q {
		if !slices.Contains(allowed, name) {
			return badRequest("unknown_parameter", name,
				fmt.Sprintf("Unknown parameter '%s'; accepted: %s.", name, strings.Join(allowed, ", ")))
		}
	}
	return nil
}

// queryLimit reads ?limit= (1–max), def when absent.
func queryLimit(q url.Values, def, max int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("invalid_value", "limit", fmt.Sprintf("limit must be an integer between 1 and %d.", max))
	}
	return n, nil
}

// liveSeconds is how long sess has been connected at now: the seconds of
// its earlier connections plus, while live, the current one, which began
// at its latest "connect" audit entry, lastConnect (any instance may hold
// the connection).
func liveSeconds(sess *store.Session, lastConnect []store.AuditEntry, now time.Time) float64 {
	secs := sess.LiveSeconds
	if sess.State != store.StateLive {
		return secs
	}
	since := sess.StartedAt
	if len(lastConnect) > 0 {
		since = lastConnect[0].At
	} else if secs > 0 {
		return secs // a reconnect whose start is unknown
	}
	if since.IsZero() || !now.After(since) {
		return secs
	}
	return secs + now.Sub(since).Seconds()
}
