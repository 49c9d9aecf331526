package relay

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
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
