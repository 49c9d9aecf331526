package sim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// readLimit bounds one client frame; appends may be 15 MiB of base64.
const readLimit = 32 << 20

// batchConn is the hijacked TCP connection of a WebSocket session. The
// session's events bypass the WebSocket library's writer: writeText
// appends each as one unmasked final text frame to a buffer, and between
// begin and flush nothing is sent, so the events of one wake-up (an audio
// delta and its transcript delta, the opening or closing events of a
// response) cost one write syscall. The library still owns reading and
// writes only control frames (pong, close), each in one Write call, which
// lands whole in the current batch or goes straight out.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      *[]byte // pending frames, from batchBufs; nil when empty
	closed   bool    // the library wrote a close frame: no data may follow

	flushing atomic.Bool // a write to Conn may be blocked
}

// batchBufs recycles batch buffers across connections: only connections
// in the middle of a batch hold one.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledBatch is the largest batch buffer returned to batchBufs.
const maxPooledBatch = 256 << 10

// Write carries the library's frames. On a session connection these are
// only control frames, each in one call, so a close frame is recognised
// by its first byte (FIN + opcode 8).
func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0] == 0x88 {
		c.closed = true
	}
	if c.batching {
		c.pending(len(p))
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.send(p)
}

// pending returns the batch buffer with room for n more bytes.
func (c *batchConn) pending(n int) *[]byte {
	if c.buf == nil {
		c.buf = batchBufs.Get().(*[]byte)
	}
	*c.buf = slices.Grow(*c.buf, n)
	return c.buf
}

// send writes p now; c.mu is held.
func (c *batchConn) send(p []byte) (int, error) {
	c.flushing.Store(true)
	defer c.flushing.Store(false)
	return c.Conn.Write(p)
}

// writeText sends event as one WebSocket text frame (server frames are not
// masked), or adds it to the batch.
func (c *batchConn) writeText(ctx context.Context, event []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	b := c.pending(len(event) + 10)
	*b = appendFrameHeader(*b, len(event))
	*b = append(*b, event...)
	if c.batching {
		return nil
	}
	return c.flushLocked(ctx)
}

// writeText3 is writeText of the event head+body+tail, without joining
// the parts first.
func (c *batchConn) writeText3(ctx context.Context, head []byte, body, tail string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	n := len(head) + len(body) + len(tail)
	b := c.pending(n + 10)
	*b = appendFrameHeader(*b, n)
	*b = append(*b, head...)
	*b = append(*b, body...)
	*b = append(*b, tail...)
	if c.batching {
		return nil
	}
	return c.flushLocked(ctx)
}

// appendFrameHeader appends the header of a final, unmasked text frame of
// n payload bytes (RFC 6455 §5.2).
func appendFrameHeader(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0x81, 127), uint64(n))
	}
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// flush ends the batch and writes what it collected. A write blocked on a
// peer that does not read is ended by closing the connection when the
// session's context is done (watchContext), as the WebSocket library does
// for its own writes.
func (c *batchConn) flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	return c.flushLocked(ctx)
}

func (c *batchConn) flushLocked(ctx context.Context) error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	var err error
	if len(*b) > 0 {
		if err = ctx.Err(); err == nil {
			_, err = c.send(*b)
		}
	}
	if cap(*b) <= maxPooledBatch {
		*b = (*b)[:0]
		batchBufs.Put(b)
	}
	return err
}

// watchContext closes the connection when ctx ends while a write is
// blocked. The returned function stops watching.
func (c *batchConn) watchContext(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		if c.flushing.Load() {
			_ = c.Conn.Close()
		}
	})
}

// hijackWriter hands websocket.Accept a batchConn in place of the raw
// connection.
type hijackWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The hijacked writer is fresh and empty: point it at the batchConn.
	w.conn = &batchConn{Conn: nc}
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}

// wsTransport carries a session over a WebSocket.
type wsTransport struct {
	c  *websocket.Conn
	bc *batchConn // nil when the connection could not be wrapped

	inBatch bool // owned by the session goroutine (begin, flush)
}

// readBufs recycles client event buffers between sessions (see
// ReadEvent and release).
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxPooledRead is the largest read buffer returned to readBufs.
const maxPooledRead = 1 << 20

// ReadEvent reads the next message into a pooled buffer; the session hands
// it back with release once handled.
func (t *wsTransport) ReadEvent(ctx context.Context) ([]byte, error) {
	_, r, err := t.c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	b := (*readBufs.Get().(*[]byte))[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// release returns a buffer from ReadEvent (or any client event buffer the
// session no longer references) for reuse.
func (t *wsTransport) release(b []byte) {
	if cap(b) <= maxPooledRead {
		b = b[:0]
		readBufs.Put(&b)
	}
}

// WriteEvent writes one event as a text frame, through the batchConn when
// there is one.
func (t *wsTransport) WriteEvent(ctx context.Context, event []byte) error {
	if t.bc != nil {
		return t.bc.writeText(ctx, event)
	}
	return t.c.Write(ctx, websocket.MessageText, event)
}

// beginBatch starts collecting frames (see batchConn).
func (t *wsTransport) beginBatch() {
	if t.bc != nil && !t.inBatch {
		t.inBatch = true
		t.bc.begin()
	}
}

// flushBatch sends the frames collected since beginBatch with one write.
func (t *wsTransport) flushBatch(ctx context.Context) error {
	if !t.inBatch {
		return nil
	}
	t.inBatch = false
	return t.bc.flush(ctx)
}

// Abort drops the TCP connection without a close handshake.
func (t *wsTransport) Abort() { _ = t.c.CloseNow() }

// End closes the socket the way upstream would for reason.
func (t *wsTransport) End(reason endReason) {
	switch reason {
	case endExpired, endShutdown:
		_ = t.c.Close(websocket.StatusGoingAway, "")
	case endStopped:
		_ = t.c.Close(websocket.StatusNormalClosure, "")
	default:
		_ = t.c.CloseNow()
	}
}
