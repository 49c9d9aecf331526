package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/voicegate/voicegate/internal/realtime"
)

// The tests here pin the hot-path rewrites to the code they replaced: the
// results must be identical. The benchmarks compare both in the same run:
//
//	go test -run '^$' -bench 'Emit|InputAppend|WriteTick' -benchmem ./internal/sim

// refFeed is the energy meter before the integer rewrite: a float sum of
// squares, one closure call per sample.
func refFeed(m *energyMeter, sumSq *float64, audio []byte, frame func(rms float64)) {
	per := 480
	if m.format != "pcm" {
		per = 160
	}
	add := func(s int16) {
		f := float64(s) / 32768
		*sumSq += f * f
		m.n++
		if m.n == per {
			frame(math.Sqrt(*sumSq / float64(per)))
			m.n, *sumSq = 0, 0
		}
	}
	switch m.format {
	case "pcm":
		for i := 0; i+1 < len(audio); i += 2 {
			add(int16(binary.LittleEndian.Uint16(audio[i:])))
		}
	case "pcmu":
		for _, b := range audio {
			add(mulawTable[b])
		}
	default:
		for _, b := range audio {
			add(alawTable[b])
		}
	}
}

func TestEnergyMeterMatchesFloatReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, format := range []string{"pcm", "pcmu", "pcma"} {
		audio := make([]byte, 48000)
		for i := range audio {
			audio[i] = byte(rng.IntN(256))
		}
		// Full-scale extremes too.
		for i := 0; i < 960; i += 2 {
			binary.LittleEndian.PutUint16(audio[i:], 0x8000)
		}
		var got, want []float64
		m, ref := energyMeter{format: format}, energyMeter{format: format}
		var refSum float64
		for rest := audio; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(3000)) // odd sizes and frame-straddling chunks
			m.feed(rest[:n], func(r float64) { got = append(got, r) })
			refFeed(&ref, &refSum, rest[:n], func(r float64) { want = append(want, r) })
			rest = rest[n:]
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d frames, reference %d", format, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s frame %d: rms %v, reference %v", format, i, got[i], want[i])
			}
		}
	}
}

// randomJSONValue builds the kind of value server events are made of,
// with strings that need every escape encoding/json knows.
func randomJSONValue(rng *rand.Rand, depth int) any {
	strs := []string{"", "plain", "item_abc123", "a\"quote", "back\\slash", "<tag>&amp;", "<b>", "a>b", "x&y", "tab\there\n",
		"\u2028line\u2029", "é ü 漢字", "bad\xffutf8", "\x00\x01\x1f", "del\x7f"}
	switch k := rng.IntN(10); {
	case k == 0:
		return nil
	case k == 1:
		return rng.IntN(2) == 0
	case k == 2:
		return rng.IntN(100000) - 50000
	case k == 3:
		return []float64{0, 0.8, 0.012, 2.265, 1e-7, 1e21, -3.5, 123456789}[rng.IntN(8)]
	case k == 4:
		return int64(rng.IntN(1 << 40))
	case k < 7 || depth > 3:
		return strs[rng.IntN(len(strs))]
	case k == 7:
		a := make([]any, rng.IntN(4))
		for i := range a {
			a[i] = randomJSONValue(rng, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range rng.IntN(6) {
			m[strs[rng.IntN(len(strs))]] = randomJSONValue(rng, depth+1)
		}
		return m
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	fixed := []any{
		map[string]any{}, map[string]any(nil), []any(nil), []any{},
		map[string]any{"usage": &realtime.Usage{InputTokens: 3, TotalTokens: 5}, "x": []string{"a"}},
		map[string]any{"z": 1, "a": map[string]any{"b": nil}, "m": json.RawMessage(`{ "k" : 1 }`)},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		var v any
		if i < len(fixed) {
			v = fixed[i]
		} else {
			v = randomJSONValue(rng, 0)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON([]byte("prefix"), v)
		if err != nil || string(got) != "prefix"+string(want) {
			t.Fatalf("appendJSON(%#v) = %s, %v; encoding/json: %s", v, got, err, want)
		}
	}
	if _, err := appendJSON(nil, math.NaN()); err == nil {
		t.Error("NaN encoded without error")
	}
}

// TestEmitMatchesEncodingJSON checks whole events: type and event_id, then
// the fields exactly as json.Marshal would write the map.
func TestEmitMatchesEncodingJSON(t *testing.T) {
	fields := map[string]any{"response": map[string]any{"id": "resp_1", "status": "completed", "output": []any{}, "usage": &realtime.Usage{}}, "x": "<&>"}
	rest, _ := json.Marshal(fields)
	b := []byte(`{"type":"t","event_id":"e"`)
	got, err := appendJSONObject(b, fields, ',')
	if want := `{"type":"t","event_id":"e",` + string(rest[1:]); err != nil || string(got) != want {
		t.Fatalf("event = %s, want %s", got, want)
	}
	if got, _ := appendJSONObject([]byte(`{"a":1`), nil, ','); string(got) != `{"a":1}` {
		t.Fatalf("no fields: %s", got)
	}
}

// countConn counts the writes that reach the socket.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// loopbackPair returns a connected TCP pair on 127.0.0.1.
func loopbackPair(t testing.TB) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// readFrames reads n unmasked server text frames.
func readFrames(r io.Reader, n int) ([]string, error) {
	c := &loadConn{br: bufio.NewReader(r)}
	var out []string
	for range n {
		msg, err := c.next()
		if err != nil {
			return out, fmt.Errorf("frame %d: %w", len(out), err)
		}
		out = append(out, string(msg))
	}
	return out, nil
}

func TestBatchConnOneWritePerBatch(t *testing.T) {
	client, server := loopbackPair(t)
	cc := &countConn{Conn: server}
	bc := &batchConn{Conn: cc}
	ctx := context.Background()
	events := []string{`{"a":1}`, strings.Repeat("x", 200), strings.Repeat("y", 70000)} // all three length encodings
	bc.begin()
	for _, e := range events {
		if err := bc.writeText(ctx, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	// writeText3 frames the parts as one event.
	if err := bc.writeText3(ctx, []byte(`{"head":"`), strings.Repeat("z", 300), `"}`); err != nil {
		t.Fatal(err)
	}
	events = append(events, `{"head":"`+strings.Repeat("z", 300)+`"}`)
	if n := cc.writes.Load(); n != 0 {
		t.Fatalf("%d writes before flush", n)
	}
	type result struct {
		frames []string
		err    error
	}
	done := make(chan result)
	go func() {
		f, err := readFrames(client, 5)
		done <- result{f, err}
	}()
	if err := bc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("batch of %d events took %d writes, want 1", len(events), n)
	}
	// Outside a batch an event goes out at once.
	if err := bc.writeText(ctx, []byte(`{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	got := res.frames
	if want := append(events, `{"b":2}`); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("frames differ")
	}
	if n := cc.writes.Load(); n != 2 {
		t.Errorf("%d writes, want 2", n)
	}
}

// TestBatchConnNoDataAfterClose: once the WebSocket library has written
// a close frame, the session's events are refused.
func TestBatchConnNoDataAfterClose(t *testing.T) {
	_, server := loopbackPair(t)
	bc := &batchConn{Conn: server}
	if _, err := bc.Write([]byte{0x88, 0x02, 0x03, 0xe8}); err != nil { // close 1000
		t.Fatal(err)
	}
	if err := bc.writeText(context.Background(), []byte(`{}`)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("event after close: %v", err)
	}
}

func TestBatchConnFlushEndsWithContext(t *testing.T) {
	_, server := loopbackPair(t) // the client never reads
	bc := &batchConn{Conn: server}
	ctx, cancel := context.WithCancel(context.Background())
	defer bc.watchContext(ctx)()
	big := make([]byte, 8<<20) // more than the socket buffers hold
	errc := make(chan error, 1)
	go func() {
		bc.begin()
		_ = bc.writeText(ctx, big)
		errc <- bc.flush(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let the write block
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("flush to a peer that does not read succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flush still blocked after the context ended")
	}
}

// BenchmarkEmit compares encoding a response.done-sized event with
// encoding/json (the reference) and with appendJSONObject.
func BenchmarkEmit(b *testing.B) {
	s := &session{cfg: defaultConfig("gpt-realtime"), id: "sess_1", convID: "conv_1"}
	r := &response{id: "resp_1", item: &item{id: "item_1", typ: "message", role: "assistant", status: "completed", isAudio: true, text: "This is simulated reply number 3 to 1.6 seconds of audio."}}
	u := usage(tokenSplit{10, 16}, tokenSplit{10, 0}, tokenSplit{15, 72})
	fields := func() map[string]any {
		return map[string]any{"response": s.responseJSON(r, "completed", nil, &u)}
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rest, _ := json.Marshal(fields())
			out := make([]byte, 0, len(rest)+64)
			out = append(out, `{"type":"response.done","event_id":"event_x"`...)
			_ = append(append(out, ','), rest[1:]...)
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = append(buf[:0], `{"type":"response.done","event_id":"event_x"`...)
			buf, _ = appendJSONObject(buf, fields(), ',')
		}
	})
}

// BenchmarkInputAppend compares handling one 400 ms input_audio_buffer.append
// (a 25.6 kB frame) the way it was handled before (io.ReadAll-style
// buffer, decode to a new slice, copy into the input buffer, float VAD) and
// now (pooled read buffer, base64 decoded into the input buffer, integer
// VAD).
func BenchmarkInputAppend(b *testing.B) {
	ev, _ := json.Marshal(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(speech(400))})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		var buffer []byte
		var sum float64
		m := energyMeter{format: "pcm"}
		for b.Loop() {
			frame, _ := io.ReadAll(bytes.NewReader(ev))
			audio, _, _ := parseAppend(frame)
			buffer = append(buffer[:0], audio...)
			refFeed(&m, &sum, audio, func(float64) {})
		}
	})
	b.Run("current", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		s := &session{cfg: defaultConfig("gpt-realtime")}
		s.cfg.vad = nil // the meter is timed below, without VAD events
		m := energyMeter{format: "pcm"}
		t := &wsTransport{}
		for b.Loop() {
			bp := readBufs.Get().(*[]byte)
			frame := append((*bp)[:0], ev...)
			b64, _, _ := scanAppend(frame)
			s.buffer = s.buffer[:0]
			s.appendB64(b64)
			m.feed(s.buffer, func(float64) {})
			t.release(frame)
		}
	})
}

// BenchmarkWriteTick compares sending one pacing tick (a 12.8 kB audio
// delta and a transcript delta) over loopback TCP through the WebSocket
// library, one flushed frame each (the reference), and through a
// batchConn, one write for both. Reports syscalls (socket writes) per tick.
func BenchmarkWriteTick(b *testing.B) {
	audio := []byte(`{"type":"response.output_audio.delta","delta":"` + sharedAudio().b64["pcm"][0] + `"}`)
	text := []byte(`{"type":"response.output_audio_transcript.delta","delta":"simulated "}`)
	ctx := context.Background()
	b.Run("per-frame", func(b *testing.B) {
		ws, _, cc := acceptCounted(b)
		for b.Loop() {
			_ = ws.Write(ctx, websocket.MessageText, text)
			_ = ws.Write(ctx, websocket.MessageText, audio)
		}
		b.ReportMetric(float64(cc.writes.Load())/float64(b.N), "writes/tick")
	})
	b.Run("batched", func(b *testing.B) {
		_, bc, cc := acceptCounted(b)
		for b.Loop() {
			bc.begin()
			_ = bc.writeText(ctx, text)
			_ = bc.writeText(ctx, audio)
			_ = bc.flush(ctx)
		}
		b.ReportMetric(float64(cc.writes.Load())/float64(b.N), "writes/tick")
	})
}

// acceptCounted serves one WebSocket on loopback, accepted as the
// simulator does, and counts the writes that reach its socket; a raw
// client drains it.
func acceptCounted(b *testing.B) (*websocket.Conn, *batchConn, *countConn) {
	type accepted struct {
		ws *websocket.Conn
		bc *batchConn
	}
	ch := make(chan accepted, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hijackWriter{ResponseWriter: w}
		ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			ch <- accepted{}
			return
		}
		ch <- accepted{ws, hw.conn}
	}))
	b.Cleanup(hs.Close)
	u, _ := url.Parse(wsURL(hs, ""))
	client, err := dialLoad(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, client.br) }()
	a := <-ch
	if a.ws == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { _ = a.ws.CloseNow(); client.nc.Close() })
	cc := &countConn{Conn: a.bc.Conn}
	a.bc.Conn = cc
	return a.ws, a.bc, cc
}
