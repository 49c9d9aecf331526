package relay

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Binding is what the relay hands a Governor that implements Binder: the
// session's interface flavour and a way to end the session.
type Binding struct {
	// Beta is set when the client speaks the beta interface.
	Beta bool
	// Close ends the session as the gateway: the client gets the error
	// event {code: reason, message} and a 1008 close; in-flight responses
	// are cancelled and metered first. Later calls are ignored.
	Close func(reason, message string)
	// SendUpstream writes a gateway-made client event upstream (e.g. a
	// session.update pinning max_output_tokens); safe for concurrent use.
	SendUpstream func(ctx context.Context, frame []byte) error
}

// Binder is optionally implemented by a Governor that needs the Binding of
// its session; Bind is called once, before any client event.
type Binder interface {
	Bind(b Binding)
}

// Ender is optionally implemented by a Governor to release what it holds
// (budget reservations) when the session is over, after the last response
// was metered.
type Ender interface {
	SessionEnded(ctx context.Context)
}

// Warner is optionally implemented by a Governor to choose how long before
// max_session_seconds the session_expiring warning goes out.
type Warner interface {
	WarnLead(maxSeconds int) time.Duration
}

// bind gives the governor its binding.
func (s *session) bind() {
	b, ok := s.gov.(Binder)
	if !ok {
		return
	}
	b.Bind(Binding{
		Beta: s.conn.Beta,
		Close: func(reason, message string) {
			s.terminate(endCause{by: byGateway, code: websocket.StatusPolicyViolation, reason: reason, message: message})
		},
		SendUpstream: func(ctx context.Context, frame []byte) error {
			return s.up.Write(ctx, websocket.MessageText, frame)
		},
	})
}

// warnLead is the session_expiring lead for a session of maxSeconds.
func (s *session) warnLead(maxSeconds int) time.Duration {
	if w, ok := s.gov.(Warner); ok {
		return w.WarnLead(maxSeconds)
	}
	return min(30*time.Second, time.Duration(maxSeconds)*time.Second/3)
}

// ended tells the governor the session is over.
func (s *session) ended() {
	e, ok := s.gov.(Ender)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.r.base), 5*time.Second)
	defer cancel()
	e.SessionEnded(ctx)
}
