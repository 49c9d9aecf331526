package simrtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/voicegate/voicegate/internal/sim"
)

// EventsLabel is the label of the data channel that carries the session's
// JSON events; the client creates it.
const EventsLabel = "oai-events"

const (
	// maxPending caps the server events buffered before the data channel
	// opens.
	maxPending = 4 << 20
	// drainTimeout bounds the wait for the peer to acknowledge the last
	// events when the simulator ends a call.
	drainTimeout = time.Second
)

// Errors that end a call; ReadEvent and WriteEvent return them wrapped.
var (
	// ErrCallClosed is returned once the call was closed by the simulator
	// (hangup or session end).
	ErrCallClosed = errors.New("webrtc call closed")
	// ErrPeerGone is returned once the peer connection failed or the peer
	// closed it or its event channel.
	ErrPeerGone = errors.New("webrtc peer gone")
	// ErrConnectTimeout is returned when the peer did not connect in time.
	ErrConnectTimeout = errors.New("webrtc peer did not connect in time")
)

var _ sim.AudioTransport = (*call)(nil)

// call is the simulator's side of one WebRTC call: a sim.AudioTransport
// whose events travel on the "oai-events" data channel and whose audio is
// PCMU RTP.
//
// It owns the peer connection. The call ends, once, when the peer
// connection fails or closes, when the event channel closes, when the peer
// does not connect in time, or when Close is called; the end closes the
// peer connection, which stops every goroutine of the call.
type call struct {
	pc     *webrtc.PeerConnection
	player *player
	log    *slog.Logger

	events  chan []byte   // text messages received on oai-events
	audioIn chan []byte   // PCM16 24 kHz chunks from the peer's track
	done    chan struct{} // closed when the call ends
	closed  chan struct{} // closed when the peer connection is closed

	endOnce sync.Once
	endErr  error // set before done is closed

	mu           sync.Mutex
	connectTimer *time.Timer
	dc           *webrtc.DataChannel
	open         bool
	pending      [][]byte
	pendingN     int
	inputOwned   bool // audioIn has its sender (a track reader) or is closed
}

// newCall wires a call to pc. track is the local audio track already added
// to pc. The call ends with ErrConnectTimeout if pc is not connected within
// connectTimeout.
func newCall(pc *webrtc.PeerConnection, track *webrtc.TrackLocalStaticRTP, connectTimeout time.Duration, log *slog.Logger) *call {
	c := &call{
		pc:      pc,
		log:     log,
		events:  make(chan []byte, 64),
		audioIn: make(chan []byte, 64),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
	}
	c.player = newPlayer(track, time.Now, randUint16(), randUint32())
	pc.OnDataChannel(c.onDataChannel)
	pc.OnTrack(c.onTrack)
	pc.OnConnectionStateChange(c.onStateChange)
	c.mu.Lock()
	c.connectTimer = time.AfterFunc(connectTimeout, func() { c.end(ErrConnectTimeout) })
	c.mu.Unlock()
	go c.player.run(c.done)
	return c
}

// ReadEvent returns the next text message received on the event channel.
//
// As with coder/websocket's Conn.Read, cancelling ctx closes the call: the
// engine reads with its session's context, so the end of the session
// (hangup, expiry, shutdown) hangs up the peer connection too.
func (c *call) ReadEvent(ctx context.Context) ([]byte, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	case <-c.done:
		return nil, fmt.Errorf("read event: %w", c.endErr)
	case <-ctx.Done():
		c.end(ErrCallClosed)
		return nil, fmt.Errorf("read event: %w", ctx.Err())
	}
}

// WriteEvent sends event as a text message on the event channel, or
// buffers it until the channel opens.
func (c *call) WriteEvent(ctx context.Context, event []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return fmt.Errorf("write event: %w", c.endErr)
	default:
	}
	if !c.open {
		if c.pendingN+len(event) > maxPending {
			return errors.New("write event: too many events waiting for the data channel to open")
		}
		c.pending = append(c.pending, append([]byte(nil), event...))
		c.pendingN += len(event)
		return nil
	}
	if err := c.dc.SendText(string(event)); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// InputAudio delivers the peer's audio as PCM16 24 kHz chunks, one per RTP
// packet (20 ms for browsers). It is closed when the peer's track ends.
func (c *call) InputAudio() <-chan []byte { return c.audioIn }

// WriteAudio queues PCM16 24 kHz audio to be played to the peer in real
// time as PCMU.
func (c *call) WriteAudio(ctx context.Context, pcm []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write audio: %w", err)
	}
	select {
	case <-c.done:
		return fmt.Errorf("write audio: %w", c.endErr)
	default:
	}
	if !c.player.write(pcm) {
		return errors.New("write audio: too much audio queued")
	}
	return nil
}

// ClearAudio drops the audio queued but not yet played.
func (c *call) ClearAudio() { c.player.clear() }

// Close ends the call and closes the peer connection. It returns when the
// peer connection is closed.
func (c *call) Close() error {
	c.end(ErrCallClosed)
	<-c.closed
	return nil
}

// end ends the call with err, the first time only. It never blocks, so
// pion callbacks may call it.
func (c *call) end(err error) {
	c.endOnce.Do(func() {
		c.endErr = err
		close(c.done)
		c.mu.Lock()
		c.connectTimer.Stop()
		if !c.inputOwned {
			c.inputOwned = true
			close(c.audioIn)
		}
		c.mu.Unlock()
		// pion's Close waits for its callbacks, which may be the caller.
		go func() {
			if errors.Is(err, ErrCallClosed) {
				// The simulator ends the call: deliver its last events
				// (session_expired…) before tearing the association down.
				c.drainEvents(drainTimeout)
			}
			if err := c.pc.Close(); err != nil {
				c.log.Debug("close peer connection", "err", err)
			}
			close(c.closed)
		}()
		c.log.Debug("webrtc call ended", "reason", err)
	})
}

// drainEvents waits, at most timeout, until the peer has acknowledged every
// event sent on the open event channel.
func (c *call) drainEvents(timeout time.Duration) {
	c.mu.Lock()
	dc, open := c.dc, c.open
	c.mu.Unlock()
	if !open {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	for dc.ReadyState() == webrtc.DataChannelStateOpen && dc.BufferedAmount() > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
}

func (c *call) onStateChange(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		c.mu.Lock()
		c.connectTimer.Stop()
		c.mu.Unlock()
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		c.end(fmt.Errorf("%w: peer connection %s", ErrPeerGone, s))
	}
}

func (c *call) onDataChannel(dc *webrtc.DataChannel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dc.Label() != EventsLabel || c.dc != nil {
		c.log.Debug("ignoring data channel", "label", dc.Label())
		return
	}
	c.dc = dc
	dc.OnOpen(c.onOpen)
	dc.OnClose(func() { c.end(fmt.Errorf("%w: %s data channel closed", ErrPeerGone, EventsLabel)) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if !msg.IsString {
			c.log.Debug("ignoring binary message on the event channel", "bytes", len(msg.Data))
			return
		}
		select {
		case c.events <- msg.Data:
		case <-c.done:
		}
	})
}

// onOpen flushes the events written before the channel opened, in order.
func (c *call) onOpen() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.pending {
		if err := c.dc.SendText(string(ev)); err != nil {
			c.log.Debug("flush event", "err", err)
			break
		}
	}
	c.pending, c.pendingN = nil, 0
	c.open = true
}

func (c *call) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if tr.Kind() != webrtc.RTPCodecTypeAudio || !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypePCMU) {
		c.log.Debug("ignoring track", "kind", tr.Kind().String(), "codec", tr.Codec().MimeType)
		return
	}
	c.mu.Lock()
	owned := c.inputOwned
	c.inputOwned = true
	c.mu.Unlock()
	if owned {
		c.log.Debug("ignoring extra audio track")
		return
	}
	go c.readInput(tr)
}

// readInput decodes the peer's PCMU packets into InputAudio until the track
// ends, which happens when the peer connection closes.
func (c *call) readInput(tr *webrtc.TrackRemote) {
	defer close(c.audioIn)
	var (
		up      upsampler
		samples []int16
		pkt     rtp.Packet
		lastSeq uint16
		started bool
	)
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		samples = samples[:0]
		if started {
			// Keep the input timeline across lost packets: replace up to one
			// second of missing packets with silence. Late packets are dropped.
			gap := pkt.SequenceNumber - lastSeq
			if gap == 0 || gap > 0x8000 {
				continue
			}
			if missing := int(gap) - 1; missing > 0 && missing <= 50 {
				samples = append(samples, make([]int16, missing*len(pkt.Payload))...)
			}
		}
		started, lastSeq = true, pkt.SequenceNumber
		samples = decodeULaw(samples, pkt.Payload)
		chunk := up.process(make([]byte, 0, len(samples)*2*resampleFactor), samples)
		select {
		case c.audioIn <- chunk:
		case <-c.done:
			return
		}
	}
}
