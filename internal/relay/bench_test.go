package relay

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/realtime"
)

// BenchmarkRelayAppend measures client→upstream relaying of 100 ms PCM16
// appends (6.4 KB frames) over loopback, end to end through both sockets.
func BenchmarkRelayAppend(b *testing.B) {
	up := &fakeUpstream{}
	h := newHarness(b, up, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &client{t: b, c: h.dial(ctx)}
	c.until(ctx, "session.created")
	frame := []byte(audioAppend(100))
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for range b.N {
		if err := c.c.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
	}
	// A round trip proves every append went through.
	c.send(ctx, `{"type":"input_audio_buffer.commit"}`)
	c.until(ctx, "input_audio_buffer.committed")
	b.StopTimer()
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	h.waitServed()
}

// readInto reads the next message of c into buf, reusing its memory.
func readInto(ctx context.Context, c *websocket.Conn, buf *bytes.Buffer) (websocket.MessageType, []byte, error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	return typ, buf.Bytes(), nil
}

// BenchmarkRelayDeltas measures upstream→client relaying of 100 ms PCM16
// audio deltas (6.4 KB of base64) sent back to back, end to end through
// both sockets: the burst profile's path. One op is one delta.
func BenchmarkRelayDeltas(b *testing.B) {
	up := &fakeUpstream{deltas: b.N, burstDelta: base64.StdEncoding.EncodeToString(make([]byte, 4800))}
	h := newHarness(b, up, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := &client{t: b, c: h.dial(ctx)}
	c.until(ctx, "session.created")
	b.SetBytes(6400)
	b.ResetTimer()
	c.send(ctx, `{"type":"response.create"}`)
	got := 0
	var buf bytes.Buffer // the client side kept lean: one reused buffer
	for {
		_, data, err := readInto(ctx, c.c, &buf)
		if err != nil {
			b.Fatal(err)
		}
		typ, _ := realtime.UpstreamEventType(data)
		if typ == "response.output_audio.delta" {
			got++
		}
		if typ == "response.done" {
			break
		}
	}
	b.StopTimer()
	if got != b.N {
		b.Fatalf("%d deltas relayed, want %d", got, b.N)
	}
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	h.waitServed()
}
