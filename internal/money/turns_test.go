package money

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// turnFunc runs turn i of a session and says how it ended.
type turnFunc func(i int) (event, outcome)

// loopTurns runs turns until one does not end in response.done. It fails
// the test unless the loop ended on budget_exceeded (an error event, maybe
// followed by the close) within maxTurns. It returns the number of
// completed responses and the last response.done.
func loopTurns(t *testing.T, shape string, c *client, maxTurns int, turn turnFunc) (int, event) {
	t.Helper()
	var last event
	for i := range maxTurns {
		ev, out := turn(i)
		if out == gotClosed && c.seen(isError("budget_exceeded")) {
			out = gotBudget
		}
		switch out {
		case gotDone:
			last = ev
			continue
		case gotBudget:
			t.Logf("%s: budget_exceeded after %d responses", shape, i)
			return i, last
		case gotClosed:
			t.Errorf("%s: session closed after %d responses without budget_exceeded: %v; last events %v", shape, i, c.err(), c.all())
		case gotError:
			t.Errorf("%s: turn %d: unexpected error event %v", shape, i+1, ev)
		case gotTimeout:
			t.Errorf("%s: turn %d: no response.done, error or close within the deadline; last events %v", shape, i+1, c.all())
		}
		return i, last
	}
	t.Errorf("%s: %d responses completed and the budget never ran out", shape, maxTurns)
	return maxTurns, last
}

// sendAll sends events in order; false when the connection is gone.
func (c *client) sendAll(evs ...string) bool {
	for _, e := range evs {
		if !c.send(e) {
			return false
		}
	}
	return true
}

// clientAudioTurn appends ms of speech, commits and asks for a response.
func clientAudioTurn(c *client, f string, ms int) turnFunc {
	evs := append(speechAppends(ms, f, 1000), `{"type":"input_audio_buffer.commit"}`, responseCreate)
	return func(int) (event, outcome) {
		if !c.sendAll(evs...) {
			return event{}, gotClosed
		}
		return c.waitResponse(30 * time.Second)
	}
}

// textTurn adds a user text item and asks for a response.
func textTurn(c *client, text string, create string) turnFunc {
	return func(i int) (event, outcome) {
		if !c.sendAll(textItem(fmt.Sprintf("%s (turn %d)", text, i+1)), create) {
			return event{}, gotClosed
		}
		return c.waitResponse(30 * time.Second)
	}
}

// TestClientTurns: manual turns (turn_detection null at mint) in PCM16,
// G.711 μ-law, G.711 A-law and text, each looping until budget_exceeded:
// the gateway ledger equals the simulator's and the session's cost stays
// within its budget (the documented margin for responses is none).
//
// For the audio formats, a sweep of sessions with budgets from $0.0120 to
// $0.0148 then sends one 30 s turn each. Its input (300 audio tokens,
// $0.0096) plus its whole reply (87 tokens, $0.0049) costs about $0.0147,
// so across the sweep the gateway must clamp max_output_tokens to what is
// left after an exact bound of the input, or refuse: a gateway that
// undercounts the audio of a format (G.711 is 8 kHz, one byte per sample)
// grants too much output in at least one of them and overspends.
func TestClientTurns(t *testing.T) {
	t.Parallel()
	const budget = 0.02
	cases := []struct {
		name   string
		format string // "" = text turns
	}{
		{"pcm16", "pcm"},
		{"pcmu", "pcmu"},
		{"pcma", "pcma"},
		{"text", ""},
	}
	forStores(t, func(t *testing.T, kind string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				shape := "client turns " + tc.name + " on " + kind
				r := newRig(t, kind, rigOptions{})
				f := tc.format
				if f == "" {
					f = "pcm"
				}
				sess := map[string]any{"audio": map[string]any{
					"input":  map[string]any{"format": formatObject(f), "turn_detection": nil},
					"output": map[string]any{"format": formatObject(f)},
				}}
				user := "client-" + tc.name
				m := r.mint(t, r.gw(0), mintReq{user: user, session: sess, budget: budget})
				c := connect(t, r.gw(1), m, shape)
				turn, added := textTurn(c, "Please tell me a long story about the sea and the budget of a lighthouse keeper", responseCreate), 60
				if tc.format != "" {
					turn, added = clientAudioTurn(c, tc.format, 10_000), 100+10
				}
				n, last := loopTurns(t, shape, c, 100, turn)
				if n == 0 {
					t.Errorf("%s: no response completed before budget_exceeded (budget $%.2f)", shape, budget)
				}
				c.closeNormal()
				all := []minted{m}
				if tc.format != "" {
					for k := range 8 {
						b := 0.0120 + 0.0004*float64(k)
						sm := r.mint(t, r.gw(k), mintReq{user: user, session: sess, budget: b})
						sc := connect(t, r.gw(k+1), sm, fmt.Sprintf("%s, one 30 s turn, budget $%.4f", shape, b))
						ev, out := clientAudioTurn(sc, tc.format, 30_000)(0)
						if out == gotClosed && sc.seen(isError("budget_exceeded")) {
							out = gotBudget
						}
						if out != gotDone && out != gotBudget {
							t.Errorf("%s: one 30 s turn with budget $%.4f: %v %v", shape, b, out, ev)
						}
						t.Logf("%s: one 30 s turn with budget $%.4f: %v %s", shape, b, out, ev.Status)
						sc.closeNormal()
						all = append(all, sm)
					}
				}
				r.checkMoney(t, shape, all)
				r.checkSpentOut(t, shape, m, last, added)
			})
		}
	})
}

// vadTurn appends speech of speechMs then 600 ms of silence (the
// simulator's server VAD ends a turn after 200 ms of silence), either as
// fast as possible in 1 s appends or in real time (20 ms every 20 ms),
// and waits for the response the server VAD starts. It stops appending
// as soon as the gateway refuses the audio or closes.
func vadTurn(c *client, speechMs int, realtime bool) turnFunc {
	chunk := 1000
	if realtime {
		chunk = 20
	}
	evs := append(speechAppends(speechMs, "pcm", chunk), appends(silent(600, "pcm"), "pcm", chunk)...)
	return func(int) (event, outcome) {
		var tick *time.Ticker
		if realtime {
			tick = time.NewTicker(20 * time.Millisecond) // pacing, as a microphone would
			defer tick.Stop()
		}
		for _, e := range evs {
			if c.seen(isError("budget_exceeded")) {
				return event{}, gotBudget
			}
			if !c.send(e) {
				return event{}, gotClosed
			}
			if tick != nil {
				<-tick.C
			}
		}
		return c.waitResponse(60 * time.Second)
	}
}

// TestServerVAD: the client only appends audio and the server's turn
// detection starts every response, for turns of 0.5 s, 2 s, 30 s and 10
// minutes of speech appended as fast as possible and, for the short ones,
// in real time. The $0.02 budget runs out; the margin for VAD responses
// is none (transcription is off).
func TestServerVAD(t *testing.T) {
	t.Parallel()
	const budget = 0.02
	cases := []struct {
		name     string
		speechMs int
		realtime bool
	}{
		{"0.5s-fast", 500, false},
		{"2s-fast", 2000, false},
		{"30s-fast", 30_000, false},
		{"10m-fast", 600_000, false},
		{"0.5s-realtime", 500, true},
		{"2s-realtime", 2000, true},
	}
	forStores(t, func(t *testing.T, kind string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				shape := "server VAD " + tc.name + " on " + kind
				r := newRig(t, kind, rigOptions{})
				m := r.mint(t, r.gw(0), mintReq{user: "vad-" + tc.name, budget: budget})
				c := connect(t, r.gw(1), m, shape)
				loopTurns(t, shape, c, 100, vadTurn(c, tc.speechMs, tc.realtime))
				c.closeNormal()
				r.checkMoney(t, shape, []minted{m})
			})
		}
	})
}

// TestTurnDetectionNull: manual turns with turn detection switched off at
// mint, or by the client's session.update after a mint that left server
// VAD on. Responses must run from the first one (the session is not
// refused for a server-VAD reservation it no longer needs) and stop at
// budget_exceeded within the budget.
func TestTurnDetectionNull(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		update bool
		budget float64
	}{
		{"mint-0.05", false, 0.05},
		{"mint-0.50", false, 0.50},
		{"session.update-0.05", true, 0.05},
		{"session.update-0.50", true, 0.50},
	}
	forStores(t, func(t *testing.T, kind string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				shape := "turn_detection null " + tc.name + " on " + kind
				r := newRig(t, kind, rigOptions{})
				var sess map[string]any
				if !tc.update {
					sess = manualTurns()
				}
				m := r.mint(t, r.gw(0), mintReq{user: "td-" + strings.ReplaceAll(tc.name, ".", "-"), session: sess, budget: tc.budget})
				c := connect(t, r.gw(1), m, shape)
				if tc.update {
					c.send(`{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":null}}}}`)
					if ev, ok := c.until(10*time.Second, is("session.updated", "error")); !ok || ev.Type != "session.updated" {
						t.Fatalf("%s: session.update turn_detection null: %v %v", shape, ev, c.err())
					}
				}
				turn := clientAudioTurn(c, "pcm", 2000)
				ev, out := turn(0)
				last := ev
				if out != gotDone {
					t.Errorf("%s: the first response was refused (%v: %v) with a budget of $%.2f", shape, out, ev, tc.budget)
				} else if _, l := loopTurns(t, shape, c, 400, func(i int) (event, outcome) { return turn(i + 1) }); l.Usage != nil {
					last = l
				}
				c.closeNormal()
				r.checkMoney(t, shape, []minted{m})
				if out == gotDone {
					r.checkSpentOut(t, shape, m, last, 20+10)
				}
			})
		}
	})
}

// TestServerVADWithTranscription: server-VAD turns with input audio
// transcription on, token-billed and duration-billed. Transcription is
// billed upstream after every commit with no response.create to reserve
// for, so the gateway reserves it as the audio accumulates: the budget
// holds for responses and transcriptions alike (margin: none).
func TestServerVADWithTranscription(t *testing.T) {
	t.Parallel()
	const budget = 0.02
	cases := []struct {
		name, transcriber string
		speechMs          int
	}{
		{"gpt-4o-mini-transcribe-2s", "gpt-4o-mini-transcribe", 2000},
		{"whisper-1-2s", "whisper-1", 2000},
		{"whisper-1-30s", "whisper-1", 30_000},
	}
	forStores(t, func(t *testing.T, kind string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				shape := "server VAD with transcription " + tc.name + " on " + kind
				r := newRig(t, kind, rigOptions{})
				m := r.mint(t, r.gw(0), mintReq{user: "tr-" + tc.name, budget: budget, session: map[string]any{
					"audio": map[string]any{"input": map[string]any{"transcription": map[string]any{"model": tc.transcriber}}},
				}})
				c := connect(t, r.gw(1), m, shape)
				loopTurns(t, shape, c, 100, vadTurn(c, tc.speechMs, false))
				c.closeNormal()
				r.checkMoney(t, shape, []minted{m})
				transcriptions := 0
				for _, e := range r.sim.Ledger() {
					if e.Kind == "transcription" {
						transcriptions++
					}
				}
				if transcriptions == 0 {
					t.Errorf("%s: the simulator billed no transcription", shape)
				}
			})
		}
	})
}
