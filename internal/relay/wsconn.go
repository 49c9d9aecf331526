package relay

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	gws "github.com/gorilla/websocket"
)

// The relay's two sockets are gorilla/websocket connections: its reads and
// server-side writes allocate nothing per frame (a message reader aside),
// where a context-bound read or write of coder/websocket registers and
// unregisters a context callback on every call (about twenty allocations
// per relayed frame, see BenchmarkRelayDeltas). Deadlines replace contexts:
// a write is bounded by its deadline, a read by the session ending (which
// closes the socket) and by the pings.

// writePool lends write buffers to connections only while they write, so
// an idle session holds none. 64 KiB fits every usual frame in one
// WebSocket frame: a client connection (upstream) fragments messages larger
// than its buffer.
var writePool = &sync.Pool{}

const writeBufferSize = 64 << 10

// wsConn is one side of a session: a gorilla connection with the write
// lock gorilla leaves to its user (one writer at a time; control frames may
// be written concurrently) and the pong signal of the side's pings.
type wsConn struct {
	c    *gws.Conn
	wmu  sync.Mutex
	pong chan struct{} // buffered 1: a pong arrived (see pingStep)
}

func newWSConn(c *gws.Conn, readLimit int64) *wsConn {
	w := &wsConn{c: c, pong: make(chan struct{}, 1)}
	c.SetReadLimit(readLimit)
	c.SetPongHandler(func(string) error {
		select {
		case w.pong <- struct{}{}:
		default:
		}
		return nil
	})
	return w
}

// read reads the next data message into buf, reusing its memory, and
// returns it as a slice of buf: valid until the next call. Pings, pongs and
// the peer's close are handled on the way (a close ends with a
// *gws.CloseError).
func (w *wsConn) read(buf *bytes.Buffer) (int, []byte, error) {
	typ, r, err := w.c.NextReader()
	if err != nil {
		return 0, nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	return typ, buf.Bytes(), nil
}

// write sends one data message, failing when it is not written within d
// (after which the connection is unusable, as a failed write leaves it).
func (w *wsConn) write(typ int, frame []byte, d time.Duration) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_ = w.c.SetWriteDeadline(time.Now().Add(d))
	return w.c.WriteMessage(typ, frame)
}

// writeCtx is write bounded by ctx's deadline, or by d when ctx has none
// nearer. A ctx cancelled before the write fails it.
func (w *wsConn) writeCtx(ctx context.Context, typ int, frame []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return w.write(typ, frame, d)
}

// closeWith starts the closing handshake: a close frame with code and
// reason, sent within a second. The side's pump reads the peer's answer and
// ends; the session closes the socket once its pumps are done (closeNow).
func (w *wsConn) closeWith(code websocket.StatusCode, reason string) {
	_ = w.c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(int(code), reason), time.Now().Add(time.Second))
}

// closeNow closes the socket at once, ending its pump's read.
func (w *wsConn) closeNow() { _ = w.c.Close() }

// closeStatus is the close code of a read error: the peer's close code,
// or -1 when the connection ended without a close frame (gorilla reports
// that as 1006, which no peer may send).
func closeStatus(err error) (websocket.StatusCode, string) {
	var ce *gws.CloseError
	if errors.As(err, &ce) && ce.Code != gws.CloseAbnormalClosure {
		return websocket.StatusCode(ce.Code), ce.Text
	}
	return -1, ""
}
