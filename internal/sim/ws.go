package sim

import (
	"context"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// handshake is what the upgrade request says about the session.
type handshake struct {
	key    string
	beta   bool
	protos []string
}

func readHandshake(r *http.Request) handshake {
	var h handshake
	if a := r.Header.Get("Authorization"); len(a) > 7 && equalFoldASCII(a[:7], "Bearer ") {
		h.key = strings.TrimSpace(a[7:])
	}
	h.beta = strings.Contains(strings.ToLower(r.Header.Get("OpenAI-Beta")), "realtime=v1")
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			p = strings.TrimSpace(p)
			h.protos = append(h.protos, p)
			switch {
			case strings.HasPrefix(p, "openai-insecure-api-key."):
				if h.key == "" {
					h.key = strings.TrimPrefix(p, "openai-insecure-api-key.")
				}
			case p == "openai-beta.realtime-v1":
				h.beta = true
			}
		}
	}
	return h
}

// serveWebSocket is GET /v1/realtime.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if st := s.opts.Faults.RefuseHandshake; st != 0 {
		writeAPIError(w, st, "server_error", "handshake_refused", "The simulator refused this connection (fault injection).")
		return
	}
	h := readHandshake(r)
	info, err := s.authorizeKey(h.key)
	if err != nil {
		s.log.Info("sim: refused websocket", "key", keyHint(h.key))
		writeBadKey(w)
		return
	}
	q := r.URL.Query()
	callID := q.Get("call_id")
	var call *session
	if callID != "" {
		if info.Ephemeral {
			writeBadKey(w)
			return
		}
		if call = s.call(callID); call == nil {
			writeAPIError(w, http.StatusNotFound, "invalid_request_error", "call_id_not_found", "No session found for the provided call_id")
			return
		}
	}
	var sess *session
	if call == nil {
		sess, err = s.newSession(sessionParams{model: q.Get("model"), bound: info.Session, beta: h.beta, intent: q.Get("intent")})
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", err.Error())
			return
		}
	}
	hw := &hijackWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"realtime"},
		InsecureSkipVerify: true, // any origin: browsers connect with ek_ keys
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Debug("sim: websocket accept", "err", err)
		return
	}
	c.SetReadLimit(readLimit)
	ctx, stop := context.WithCancel(context.WithoutCancel(r.Context()))
	defer stop()
	id, ok := s.track(stop)
	if !ok {
		_ = c.Close(websocket.StatusGoingAway, "simulator shutting down")
		return
	}
	defer s.untrack(id)
	if call != nil {
		s.sideband(ctx, c, call)
		return
	}
	t := &wsTransport{c: c, bc: hw.conn}
	if t.bc != nil {
		defer t.bc.watchContext(ctx)()
	}
	sess.run(ctx, t)
}

// sideband attaches c to a running call: every server event of the call is
// copied to c, and c's client events go into the call.
func (s *Server) sideband(ctx context.Context, c *websocket.Conn, call *session) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := call.observe()
	defer call.unobserve(events)
	go func() { // reader: ends with ctx (cancelled when the writer loop returns)
		defer cancel()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if call.inject(ctx, b) != nil {
				return
			}
		}
	}()
	for {
		select {
		case b, ok := <-events:
			if !ok {
				_ = c.Close(websocket.StatusNormalClosure, "call ended")
				return
			}
			if err := c.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
		case <-ctx.Done():
			_ = c.CloseNow()
			return
		}
	}
}
