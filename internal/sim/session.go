package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/realtime"
)

// sessionParams are what a connection knows before the session starts.
type sessionParams struct {
	model  string          // ?model=
	bound  json.RawMessage // GA config bound to the ek_ key or the call
	callID string
	beta   bool
	intent string // "transcription" or ""
}

// session is one simulated Realtime session. All state below mu-less fields
// is owned by the goroutine running run; other goroutines talk to it
// through in (client events) and stop.
type session struct {
	srv    *Server
	id     string
	convID string
	beta   bool
	callID string
	cfg    *sessionConfig
	expAt  int64

	in       chan []byte
	done     chan struct{} // closed when run returns
	stopOnce sync.Once
	stopCh   chan struct{}

	obsMu     sync.Mutex
	observers map[chan []byte]struct{}

	// Owned by run.
	ctx      context.Context
	t        Transport
	audioT   AudioTransport
	sent     int
	items    []*item
	buffer   []byte // input audio since the last commit
	meter    energyMeter
	frames   int // 20 ms input frames seen by VAD
	speaking bool
	silence  int // ms of silence since speech
	vadItem  string
	active   []*response
	turn     int
	prevIn   tokenSplit // input of the previous default-conversation response
	playing  *response  // response whose audio the AudioTransport is playing
	aborted  bool
	scratch  []byte  // audio delta buffer, valid until the next send
	batch    batcher // t's batching, or nil
	release  func([]byte)
}

// batcher is implemented by transports that can coalesce the events
// written between beginBatch and flushBatch into one network write.
type batcher interface {
	beginBatch()
	flushBatch(ctx context.Context) error
}

// releaser is implemented by transports whose ReadEvent buffers can be
// reused once the session has handled the event.
type releaser interface{ release([]byte) }

// maxDrain bounds how many queued client events one batch handles.
const maxDrain = 16

var errAborted = errors.New("connection dropped by fault injection")

func (s *Server) newSession(p sessionParams) (*session, error) {
	now := s.now()
	cfg := defaultConfig(p.model)
	if len(p.bound) > 0 && string(p.bound) != "null" {
		if err := cfg.update(p.bound, false, true); err != nil {
			return nil, fmt.Errorf("session config: %s", err.msg)
		}
	}
	if p.model != "" {
		cfg.model = p.model
		cfg.ga["model"] = p.model
		cfg.modelLocked = true
	}
	if p.intent == "transcription" {
		cfg.ga["type"] = "transcription"
		_ = cfg.derive()
	}
	return &session{
		srv:       s,
		id:        realtime.NewID("sess_"),
		convID:    realtime.NewID("conv_"),
		beta:      p.beta,
		callID:    p.callID,
		cfg:       cfg,
		expAt:     now.Add(s.opts.SessionMax).Unix(),
		in:        make(chan []byte, 64),
		done:      make(chan struct{}),
		stopCh:    make(chan struct{}),
		observers: map[chan []byte]struct{}{},
	}, nil
}

// stop ends the session (hangup); safe from any goroutine.
func (s *session) stop() { s.stopOnce.Do(func() { close(s.stopCh) }) }

// endReason says why run returned.
type endReason int

const (
	endPeer endReason = iota // transport failed or peer left
	endStopped
	endExpired
	endAborted
	endShutdown
)

// ender is implemented by transports that close differently depending on
// why the session ended (WebSocket close codes).
type ender interface{ End(endReason) }

// run drives the session over t until the peer leaves, stop is called,
// the session expires or a fault drops it.
func (s *session) run(ctx context.Context, t Transport) (reason endReason) {
	defer close(s.done)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx, s.t = ctx, t
	s.audioT, _ = t.(AudioTransport)
	s.batch, _ = t.(batcher)
	if r, ok := t.(releaser); ok {
		s.release = r.release
	}
	s.meter.format = s.cfg.inFormat

	readErr := make(chan struct{})
	go func() { // reader: owned by run through ctx
		defer close(readErr)
		for {
			b, err := t.ReadEvent(ctx)
			if err != nil {
				return
			}
			select {
			case s.in <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		s.flush()
		if c, ok := t.(ender); ok {
			if parent.Err() != nil {
				reason = endShutdown
			}
			c.End(reason) // unblocks the reader with a proper close
		}
		cancel()
		<-readErr
		s.closeObservers()
	}()

	var audioIn <-chan []byte
	if s.audioT != nil {
		audioIn = s.audioT.InputAudio()
	}
	expiry := time.NewTimer(s.srv.opts.SessionMax)
	defer expiry.Stop()
	pace := time.NewTimer(time.Hour)
	defer pace.Stop()
	fast := s.srv.opts.Pace == PaceFast

	s.emit("session.created", map[string]any{"session": s.cfg.view(s.beta, s.id, s.expAt)})
	// Events produced by one wake-up go out as one batch: begin follows
	// the wake-up (an idle session holds no batch open, so frames the
	// WebSocket library writes on its own, such as pongs, are not held
	// back) and the next iteration or the deferred end flushes it.
	for !s.aborted {
		s.flush()
		if fast && len(s.active) > 0 {
			s.begin()
			select { // keep reading between steps so cancels and barge-in land
			case b := <-s.in:
				s.handleIn(b)
			case <-readErr:
				return endPeer
			case <-s.stopCh:
				return endStopped
			default:
				s.advance(time.Time{})
			}
			continue
		}
		if due, ok := s.nextDue(); ok {
			pace.Reset(time.Until(due))
		} else {
			pace.Stop()
		}
		select {
		case <-ctx.Done():
			return endPeer
		case <-readErr:
			return endPeer
		case <-s.stopCh:
			return endStopped
		case b := <-s.in:
			s.begin()
			s.handleIn(b)
			s.drain()
			if now := time.Now(); !fast && !s.aborted {
				// A response just started has its first step due now:
				// send it in this batch rather than after a timer wake-up.
				if due, ok := s.nextDue(); ok && !due.After(now) {
					s.advance(now)
				}
			}
		case pcm, ok := <-audioIn:
			if !ok {
				audioIn = nil
				continue
			}
			s.begin()
			s.inputAudio(pcm, "pcm")
		case <-expiry.C:
			s.begin()
			mins := s.srv.opts.SessionMax.Minutes()
			s.sendError("invalid_request_error", "session_expired",
				fmt.Sprintf("Your session hit the maximum duration of %s.", durationWords(s.srv.opts.SessionMax, mins)), "", "")
			return endExpired
		case now := <-pace.C:
			s.begin()
			s.advance(now)
		}
	}
	return endAborted
}

func durationWords(d time.Duration, mins float64) string {
	if d%time.Minute == 0 {
		if mins == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", int(mins))
	}
	return d.String()
}

// handleIn handles a client event read from s.in, then recycles its
// buffer (handle keeps no reference to it).
func (s *session) handleIn(b []byte) {
	s.handle(b)
	if s.release != nil {
		s.release(b)
	}
}

// drain handles client events already queued, so that a burst of appends
// is answered in one batch.
func (s *session) drain() {
	for i := 0; i < maxDrain && !s.aborted; i++ {
		select {
		case b := <-s.in:
			s.handleIn(b)
		default:
			return
		}
	}
}

// begin starts a batch of server events (see batcher).
func (s *session) begin() {
	if s.batch != nil {
		s.batch.beginBatch()
	}
}

// flush sends the current batch of server events.
func (s *session) flush() {
	if s.batch == nil {
		return
	}
	if err := s.batch.flushBatch(s.ctx); err != nil {
		s.srv.log.Debug("sim: write events", "session", s.id, "err", err)
	}
}

// emit sends a GA-named server event (renamed or dropped in beta).
func (s *session) emit(typ string, fields map[string]any) {
	if s.beta {
		if name, ok := betaEventNames[typ]; ok {
			if name == "" {
				return
			}
			typ = name
		}
	}
	// type and event_id first, as upstream frames have them, then the
	// fields as encoding/json would marshal the map. The WebSocket
	// transport copies the frame, so its buffer is reused (see audioDelta).
	var b []byte
	_, reuse := s.t.(*wsTransport)
	if reuse {
		b = s.scratch[:0]
	}
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","event_id":"`...)
	b = append(b, realtime.NewID("event_")...)
	b = append(b, '"')
	b, err := appendJSONObject(b, fields, ',')
	if err != nil {
		s.srv.log.Error("sim: marshal event", "type", typ, "err", err)
		return
	}
	if reuse {
		s.scratch = b
	}
	s.send(b)
}

// send writes one encoded event to the transport and every sideband
// observer, applying the fault knobs.
func (s *session) send(b []byte) {
	if s.aborted {
		return
	}
	f := s.srv.opts.Faults
	if f.EventDelay > 0 {
		t := time.NewTimer(f.EventDelay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	if err := s.t.WriteEvent(s.ctx, b); err != nil {
		s.srv.log.Debug("sim: write event", "session", s.id, "err", err)
	}
	if f.EventDelay > 0 { // each event goes out after its own delay
		s.flush()
		s.begin()
	}
	s.broadcast(b)
	s.sent++
	if f.DropAfterEvents > 0 && s.sent >= f.DropAfterEvents {
		s.abort()
	}
}

// aborter is implemented by transports that can drop their connection
// without a close handshake (fault injection).
type aborter interface{ Abort() }

func (s *session) abort() {
	s.flush() // what was sent before the drop reaches the peer
	s.aborted = true
	if a, ok := s.t.(aborter); ok {
		a.Abort()
	}
}

func (s *session) sendError(typ, code, msg, param, clientEventID string) {
	e := map[string]any{"type": typ, "code": code, "message": msg, "param": nil, "event_id": nil}
	if param != "" {
		e["param"] = param
	}
	if clientEventID != "" {
		e["event_id"] = clientEventID
	}
	s.emit("error", map[string]any{"error": e})
}

func (s *session) invalid(code, msg, param, clientEventID string) {
	s.sendError("invalid_request_error", code, msg, param, clientEventID)
}

// observe registers a sideband listener; it receives every server event
// until the session ends (then the channel is closed) or it falls behind.
func (s *session) observe() chan []byte {
	ch := make(chan []byte, 256)
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	select {
	case <-s.done:
		close(ch)
		return ch
	default:
	}
	s.observers[ch] = struct{}{}
	return ch
}

func (s *session) unobserve(ch chan []byte) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	if _, ok := s.observers[ch]; ok {
		delete(s.observers, ch)
		close(ch)
	}
}

// observed reports whether a sideband listens to the session.
func (s *session) observed() bool {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	return len(s.observers) > 0
}

func (s *session) broadcast(b []byte) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	if len(s.observers) > 0 {
		b = append([]byte(nil), b...) // b may be the reused scratch buffer
	}
	for ch := range s.observers {
		select {
		case ch <- b:
		default: // a sideband that cannot keep up is dropped
			delete(s.observers, ch)
			close(ch)
		}
	}
}

func (s *session) closeObservers() {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	for ch := range s.observers {
		delete(s.observers, ch)
		close(ch)
	}
}

// inject delivers a client event from a sideband connection.
func (s *session) inject(ctx context.Context, b []byte) error {
	select {
	case s.in <- b:
		return nil
	case <-s.done:
		return errors.New("session ended")
	case <-ctx.Done():
		return ctx.Err()
	}
}
