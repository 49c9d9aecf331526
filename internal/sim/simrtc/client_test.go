package simrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// testClient is a pion peer playing the browser: a PCMU microphone track
// (sendrecv, offered after Opus like a browser does) and the "oai-events"
// data channel.
type testClient struct {
	t      *testing.T
	pc     *webrtc.PeerConnection
	dc     *webrtc.DataChannel
	mic    *webrtc.TrackLocalStaticSample
	events chan map[string]any

	opened   chan struct{}
	dcClosed chan struct{}
	ended    chan struct{} // peer connection closed or failed

	rtpPackets atomic.Int64
	rtpEnergy  atomic.Int64 // packets whose payload is not silence
	firstRTP   chan *rtp.Packet
}

func newTestClient(t *testing.T) *testClient {
	t.Helper()
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	LoopbackOnly(&se)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{
		t:        t,
		pc:       pc,
		events:   make(chan map[string]any, 1024),
		opened:   make(chan struct{}),
		dcClosed: make(chan struct{}),
		ended:    make(chan struct{}),
		firstRTP: make(chan *rtp.Packet, 1),
	}
	var endOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed {
			endOnce.Do(func() { close(c.ended) })
		}
	})
	c.mic, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, "mic", "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(c.mic); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		first := true
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			c.rtpPackets.Add(1)
			if !bytes.Equal(pkt.Payload, bytes.Repeat([]byte{ulawSilence}, len(pkt.Payload))) {
				c.rtpEnergy.Add(1)
			}
			if first {
				first = false
				c.firstRTP <- pkt
			}
		}
	})
	c.dc, err = pc.CreateDataChannel(EventsLabel, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.dc.OnOpen(func() { close(c.opened) })
	c.dc.OnClose(func() { close(c.dcClosed) })
	c.dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		var ev map[string]any
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			t.Errorf("event is not JSON: %q", msg.Data)
			return
		}
		c.events <- ev
	})
	t.Cleanup(func() { _ = pc.Close() })
	return c
}

// offer returns the client's SDP offer with its candidates.
func (c *testClient) offer() string {
	c.t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	<-gathered
	return c.pc.LocalDescription().SDP
}

// accept applies the simulator's answer and waits for the event channel.
func (c *testClient) accept(answer string) {
	c.t.Helper()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		c.t.Fatalf("set answer: %v", err)
	}
	select {
	case <-c.opened:
	case <-time.After(10 * time.Second):
		c.t.Fatal("data channel did not open")
	}
}

func (c *testClient) send(ev map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(ev)
	if err := c.dc.SendText(string(b)); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

// next returns the next server event.
func (c *testClient) next(timeout time.Duration) map[string]any {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(timeout):
		c.t.Fatal("no event within", timeout)
		return nil
	}
}

// waitFor skips events until one of type typ and returns it with the types
// seen before it.
func (c *testClient) waitFor(typ string, timeout time.Duration) (map[string]any, []string) {
	c.t.Helper()
	var seen []string
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-c.events:
			if ev["type"] == typ {
				return ev, seen
			}
			seen = append(seen, ev["type"].(string))
		case <-deadline:
			c.t.Fatalf("no %s within %v; saw %v", typ, timeout, seen)
			return nil, nil
		}
	}
}

// speak sends 8 kHz samples as 20 ms PCMU packets, every interval.
func (c *testClient) speak(ctx context.Context, samples []int16, interval time.Duration) {
	c.t.Helper()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i+frameSamples <= len(samples); i += frameSamples {
		payload := encodeULaw(nil, samples[i:i+frameSamples])
		if err := c.mic.WriteSample(media.Sample{Data: payload, Duration: frameDuration}); err != nil {
			c.t.Fatalf("write sample: %v", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// speechThenSilence is about secs of a 200 Hz tone with a 4 Hz amplitude
// modulation (speech-like energy) followed by as much silence, at 8 kHz.
func speechThenSilence(speech, silence time.Duration) []int16 {
	n := int(speech.Seconds() * 8000)
	out := tone(200, 8000, n, 12000)
	for i := range out {
		env := 0.6 + 0.4*math.Sin((2*3.14159265*4*float64(i)/8000))
		out[i] = int16(float64(out[i]) * env)
	}
	return append(out, make([]int16, int(silence.Seconds()*8000))...)
}

// postSDP posts offer as application/sdp with authorization.
func postSDP(t *testing.T, url, authorization, offer string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/realtime/calls", bytes.NewBufferString(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// postMultipart posts the unified form: parts "sdp" and, if non-empty,
// "session".
func postMultipart(t *testing.T, url, authorization, offer, session string) *http.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if offer != "" {
		_ = mw.WriteField("sdp", offer)
	}
	if session != "" {
		_ = mw.WriteField("session", session)
	}
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/realtime/calls", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertEnvelope checks an OpenAI error envelope with the given status and
// code.
func assertEnvelope(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    string  `json:"code"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("body is not an error envelope: %s", body)
	}
	if env.Error.Code != code || env.Error.Message == "" || env.Error.Type == "" {
		t.Fatalf("error = %+v, want code %q with a message and a type", env.Error, code)
	}
}
