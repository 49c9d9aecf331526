package simrtc

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/voicegate/voicegate/internal/sim"
)

// New returns the handler of POST /v1/realtime/calls for srv. The caller sets
// srv.Calls = simrtc.New(srv).
//
// Each call it answers is a session of srv started with srv.StartCall on a
// WebRTC transport; srv.Hangup and the end of the session close the peer
// connection.
func New(srv *sim.Server, opts ...Option) http.Handler {
	return newHandler(engine{
		authorize: func(authorization string) (keyInfo, error) {
			k, err := srv.Authorize(authorization)
			return keyInfo{ephemeral: k.Ephemeral, session: k.Session}, err
		},
		startCall: func(ctx context.Context, t sim.AudioTransport, session json.RawMessage) (string, error) {
			return srv.StartCall(ctx, t, sim.CallOptions{Session: session})
		},
	}, opts)
}
