package sim

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func errOf(t *testing.T, ev map[string]any) map[string]any {
	t.Helper()
	if ev["type"] != "error" {
		t.Fatalf("event %v, want error", ev["type"])
	}
	return ev["error"].(map[string]any)
}

func TestSessionUpdate(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "?model=gpt-realtime")
	got := c.update(map[string]any{"type": "realtime", "audio": map[string]any{"output": map[string]any{"voice": "marin"}}})
	if v := obj(got, "audio", "output")["voice"]; v != "marin" {
		t.Errorf("voice = %v", v)
	}
	if f := obj(got, "audio", "output", "format")["type"]; f != "audio/pcm" {
		t.Errorf("merge lost output format: %v", f)
	}
	if obj(got, "audio", "input", "turn_detection")["type"] != "server_vad" || !strings.HasPrefix(got["instructions"].(string), "You are") {
		t.Errorf("merge lost fields: %v", got)
	}
	got = c.update(map[string]any{"type": "realtime", "instructions": "", "audio": map[string]any{"input": map[string]any{"turn_detection": nil}}})
	if got["instructions"] != "" || obj(got, "audio", "input")["turn_detection"] != nil {
		t.Errorf("clearing failed: %v", got)
	}

	cases := []struct {
		name  string
		sess  map[string]any
		code  string
		param string
	}{
		{"model", map[string]any{"type": "realtime", "model": "gpt-4o-realtime-preview"}, "invalid_value", "session.model"},
		{"voice", map[string]any{"type": "realtime", "audio": map[string]any{"output": map[string]any{"voice": "bogus"}}}, "invalid_value", "session.audio.output.voice"},
		{"no type", map[string]any{"instructions": "x"}, "missing_required_parameter", "session.type"},
		{"modalities", map[string]any{"type": "realtime", "output_modalities": []string{"audio", "text"}}, "invalid_value", "session.output_modalities"},
		{"max tokens", map[string]any{"type": "realtime", "max_output_tokens": 5000}, "integer_above_max_value", "session.max_output_tokens"},
		{"vad", map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": map[string]any{"type": "magic"}}}}, "invalid_value", "session.audio.input.turn_detection.type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.send(map[string]any{"type": "session.update", "event_id": "evt_" + tc.name, "session": tc.sess})
			e := errOf(t, c.next())
			if e["code"] != tc.code || e["param"] != tc.param || e["event_id"] != "evt_"+tc.name || e["type"] != "invalid_request_error" {
				t.Errorf("error = %v", e)
			}
		})
	}
	c.send(map[string]any{"type": "bogus.event", "event_id": "e1"})
	if e := errOf(t, c.next()); e["event_id"] != "e1" || e["param"] != "type" {
		t.Errorf("unknown event error = %v", e)
	}
	c.send(map[string]any{"event_id": "e2"})
	if e := errOf(t, c.next()); e["code"] != "invalid_event" || e["event_id"] != "e2" {
		t.Errorf("missing type error = %v", e)
	}
	// semantic_vad is accepted.
	got = c.update(map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": map[string]any{"type": "semantic_vad", "eagerness": "high"}}}})
	if obj(got, "audio", "input", "turn_detection")["type"] != "semantic_vad" {
		t.Errorf("semantic_vad: %v", got)
	}
}

func TestManualTurnsAndCommit(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.update(map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": nil}}})
	c.appendAudio(speech(50), 50)
	c.send(map[string]any{"type": "input_audio_buffer.commit", "event_id": "c1"})
	e := errOf(t, c.next())
	if e["code"] != "input_audio_buffer_commit_empty" || e["event_id"] != "c1" || !strings.Contains(e["message"].(string), "50.00ms") {
		t.Errorf("small commit error = %v", e)
	}
	c.appendAudio(speech(500), 100)
	c.appendAudio(silence(500), 100)
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	ev, seen := c.until("input_audio_buffer.committed")
	if indexOf(seen, "input_audio_buffer.speech_started") >= 0 {
		t.Errorf("VAD ran with turn_detection null: %v", seen)
	}
	if _, seen := c.until("conversation.item.done"); indexOf(seen, "response.created") >= 0 {
		t.Errorf("manual turn auto-responded")
	}
	c.send(map[string]any{"type": "response.create"})
	done, _ := c.until("response.done")
	if got := num(usageOf(t, done), "input_token_details", "audio_tokens"); got != 11 { // 1050 ms
		t.Errorf("input audio tokens = %d, want 11 (item %v)", got, ev["item_id"])
	}
	c.appendAudio(speech(200), 100)
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	c.until("input_audio_buffer.cleared")
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if e := errOf(t, c.next()); e["code"] != "input_audio_buffer_commit_empty" {
		t.Errorf("commit after clear = %v", e)
	}
}

func TestOneActiveResponseAndCancel(t *testing.T) {
	_, hs := startSim(t, Options{}) // real time: the response stays active
	c := mustDial(t, hs, "")
	c.send(map[string]any{"type": "response.create"})
	created, _ := c.until("response.created")
	id := created["response"].(map[string]any)["id"].(string)
	c.send(map[string]any{"type": "response.create", "event_id": "r2"})
	e, _ := c.until("error")
	if er := e["error"].(map[string]any); er["code"] != "conversation_already_has_active_response" || !strings.Contains(er["message"].(string), id) || er["event_id"] != "r2" {
		t.Errorf("second response error = %v", er)
	}
	// Out-of-band responses may run in parallel.
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"conversation": "none", "output_modalities": []string{"text"}, "metadata": map[string]any{"k": "v"}}})
	oob, _ := c.until("response.created")
	oobResp := oob["response"].(map[string]any)
	if oobResp["conversation_id"] != nil || oobResp["metadata"].(map[string]any)["k"] != "v" {
		t.Errorf("oob response = %v", oobResp)
	}
	var doneOOB map[string]any
	for doneOOB == nil {
		ev, _ := c.until("response.done")
		if ev["response"].(map[string]any)["id"] == oobResp["id"] {
			doneOOB = ev
		} else {
			t.Fatalf("default response finished before the oob one")
		}
	}
	c.send(map[string]any{"type": "response.cancel"})
	done, _ := c.until("response.done")
	r := done["response"].(map[string]any)
	if r["id"] != id || r["status"] != "cancelled" || r["status_details"].(map[string]any)["reason"] != "client_cancelled" {
		t.Errorf("cancelled response = %v", r)
	}
	c.send(map[string]any{"type": "response.cancel", "event_id": "x"})
	if e := errOf(t, c.next()); e["code"] != "response_cancel_not_active" || e["event_id"] != "x" {
		t.Errorf("cancel without active = %v", e)
	}
}

func TestBargeIn(t *testing.T) {
	_, hs := startSim(t, Options{})
	c := mustDial(t, hs, "")
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": strings.Repeat("long question ", 10)}}}})
	c.send(map[string]any{"type": "response.create"})
	c.until("response.output_audio.delta")
	c.appendAudio(speech(200), 20)
	done, seen := c.until("response.done")
	if indexOf(seen, "input_audio_buffer.speech_started") < 0 {
		t.Fatalf("no speech_started before response.done: %v", seen)
	}
	r := done["response"].(map[string]any)
	if r["status"] != "cancelled" || r["status_details"].(map[string]any)["reason"] != "turn_detected" {
		t.Fatalf("response = %v", r)
	}
	// Cancelled output is billed for what was emitted only.
	if got := num(usageOf(t, done), "output_token_details", "audio_tokens"); got <= 0 || got >= outputAudioMs("You said: "+strings.Repeat("long question ", 10))/50 {
		t.Errorf("cancelled audio tokens = %d", got)
	}
}

func TestItems(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	audio := base64.StdEncoding.EncodeToString(speech(300))
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"id": "item_a", "type": "message", "role": "user", "content": []any{map[string]any{"type": "input_audio", "audio": audio}}}})
	added, _ := c.until("conversation.item.added")
	if added["previous_item_id"] != nil || added["item"].(map[string]any)["id"] != "item_a" {
		t.Errorf("added = %v", added)
	}
	c.until("conversation.item.done")
	c.send(map[string]any{"type": "conversation.item.create", "previous_item_id": "root", "item": map[string]any{"id": "item_b", "type": "message", "role": "system", "content": []any{map[string]any{"type": "input_text", "text": "sys"}}}})
	c.until("conversation.item.done")
	c.send(map[string]any{"type": "conversation.item.create", "event_id": "dup", "item": map[string]any{"id": "item_a", "type": "message", "role": "user", "content": []any{}}})
	if e := errOf(t, c.next()); e["event_id"] != "dup" {
		t.Errorf("duplicate = %v", e)
	}
	c.send(map[string]any{"type": "conversation.item.retrieve", "item_id": "item_a"})
	ret, _ := c.until("conversation.item.retrieved")
	if got := ret["item"].(map[string]any)["content"].([]any)[0].(map[string]any)["audio"]; got != audio {
		t.Errorf("retrieved audio differs")
	}
	c.send(map[string]any{"type": "response.create"})
	done, _ := c.until("response.done")
	out := done["response"].(map[string]any)["output"].([]any)[0].(map[string]any)
	id := out["id"].(string)
	c.send(map[string]any{"type": "conversation.item.truncate", "item_id": id, "content_index": 0, "audio_end_ms": 100000, "event_id": "tr"})
	if e := errOf(t, c.next()); e["param"] != "audio_end_ms" || e["event_id"] != "tr" {
		t.Errorf("truncate beyond = %v", e)
	}
	c.send(map[string]any{"type": "conversation.item.truncate", "item_id": id, "content_index": 0, "audio_end_ms": 500})
	tr, _ := c.until("conversation.item.truncated")
	if num(tr, "audio_end_ms") != 500 {
		t.Errorf("truncated = %v", tr)
	}
	c.send(map[string]any{"type": "conversation.item.delete", "item_id": "item_b"})
	if del, _ := c.until("conversation.item.deleted"); del["item_id"] != "item_b" {
		t.Errorf("deleted = %v", del)
	}
	c.send(map[string]any{"type": "conversation.item.retrieve", "item_id": "item_b", "event_id": "gone"})
	if e := errOf(t, c.next()); e["event_id"] != "gone" {
		t.Errorf("retrieve deleted = %v", e)
	}
	// Second response: item_a (3 audio tokens) + truncated assistant audio
	// (500 ms → 5 tokens); the first response's input is cached.
	c.send(map[string]any{"type": "response.create"})
	done, _ = c.until("response.done")
	u := usageOf(t, done)
	if got := num(u, "input_token_details", "audio_tokens"); got != 3+5 {
		t.Errorf("input audio tokens = %d, want 8", got)
	}
	if got := num(u, "input_token_details", "cached_tokens_details", "audio_tokens"); got != 3 {
		t.Errorf("cached audio tokens = %d, want 3", got)
	}
}

func TestToolCallAndTextOnly(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.update(map[string]any{"type": "realtime", "output_modalities": []string{"text"},
		"tools": []any{map[string]any{"type": "function", "name": "get_weather", "parameters": map[string]any{"type": "object"}}}})
	say := func(text string) {
		c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": text}}}})
		c.send(map[string]any{"type": "response.create"})
	}
	say("What is the weather? Use get weather please")
	args, seen := c.until("response.function_call_arguments.done")
	if args["name"] != "get_weather" || args["arguments"] != "{}" || indexOf(seen, "response.function_call_arguments.delta") < 0 {
		t.Fatalf("function call = %v", args)
	}
	done, _ := c.until("response.done")
	item := done["response"].(map[string]any)["output"].([]any)[0].(map[string]any)
	if item["type"] != "function_call" || item["call_id"] != args["call_id"] {
		t.Errorf("output = %v", item)
	}
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "function_call_output", "call_id": args["call_id"], "output": `{"temp":21}`}})
	c.send(map[string]any{"type": "response.create"})
	text, seen := c.until("response.output_text.done")
	if text["text"] != `The tool returned: {"temp":21}` || indexOf(seen, "response.output_audio.delta") >= 0 {
		t.Errorf("text = %v, seen %v", text["text"], seen)
	}
	done, _ = c.until("response.done")
	if u := usageOf(t, done); num(u, "output_token_details", "audio_tokens") != 0 || num(u, "output_token_details", "text_tokens") != textTokens(len(text["text"].(string))) {
		t.Errorf("text usage = %v", u)
	}
	say("hello there")
	text, _ = c.until("response.output_text.done")
	if text["text"] != "You said: hello there" {
		t.Errorf("echo = %v", text["text"])
	}
	c.until("response.done")
}

func TestMaxOutputTokens(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"max_output_tokens": 20}})
	done, _ := c.until("response.done")
	r := done["response"].(map[string]any)
	if r["status"] != "incomplete" || r["status_details"].(map[string]any)["reason"] != "max_output_tokens" {
		t.Fatalf("response = %v", r)
	}
	if got := num(usageOf(t, done), "output_tokens"); got > 20 || got < 15 {
		t.Errorf("output tokens = %d, want ≤ 20 and close", got)
	}
}

func TestOutputFormatsAndBeta(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.update(map[string]any{"type": "realtime", "audio": map[string]any{"output": map[string]any{"format": map[string]any{"type": "audio/pcmu"}}}})
	c.send(map[string]any{"type": "response.create"})
	d, _ := c.until("response.output_audio.delta")
	if b, _ := base64.StdEncoding.DecodeString(d["delta"].(string)); len(b) != 8*chunkMs {
		t.Errorf("μ-law chunk = %d bytes, want %d", len(b), 8*chunkMs)
	}
	c.until("response.done")

	b, _, err := dial(t, wsURL(hs, "?model=gpt-4o-realtime-preview"), map[string][]string{"Authorization": {"Bearer " + testKey}, "OpenAI-Beta": {"realtime=v1"}})
	if err != nil {
		t.Fatal(err)
	}
	created := b.next()
	sess := created["session"].(map[string]any)
	if sess["input_audio_format"] != "pcm16" || sess["voice"] != "alloy" || sess["audio"] != nil {
		t.Errorf("beta session shape = %v", sess)
	}
	b.send(map[string]any{"type": "session.update", "session": map[string]any{"voice": "echo", "output_audio_format": "g711_alaw", "modalities": []string{"text", "audio"}}})
	upd, _ := b.until("session.updated")
	if s := upd["session"].(map[string]any); s["voice"] != "echo" || s["output_audio_format"] != "g711_alaw" {
		t.Errorf("beta update = %v", s)
	}
	b.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": "hi"}}}})
	b.send(map[string]any{"type": "response.create"})
	_, seen := b.until("response.done")
	for _, w := range []string{"conversation.item.created", "response.audio.delta", "response.audio_transcript.delta", "response.audio.done"} {
		if indexOf(seen, w) < 0 {
			t.Errorf("beta flow lacks %s: %v", w, seen)
		}
	}
	for _, ga := range []string{"conversation.item.added", "response.output_audio.delta"} {
		if indexOf(seen, ga) >= 0 {
			t.Errorf("beta flow has GA event %s", ga)
		}
	}
}

func TestSessionExpired(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast, SessionMax: 300 * time.Millisecond})
	c := mustDial(t, hs, "")
	e := errOf(t, c.next())
	if e["code"] != "session_expired" || e["message"] != "Your session hit the maximum duration of 300ms." {
		t.Errorf("expiry = %v", e)
	}
	if _, _, err := c.c.Read(c.ctx); err == nil {
		t.Errorf("socket still open after session_expired")
	}
	if got := durationWords(60*time.Minute, 60); got != "60 minutes" {
		t.Errorf("durationWords = %q", got)
	}
}

func TestInputTranscription(t *testing.T) {
	_, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "")
	c.update(map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"transcription": map[string]any{"model": "gpt-4o-mini-transcribe"}}}})
	c.appendAudio(speech(500), 100)
	c.appendAudio(silence(400), 100)
	ev, _ := c.until("conversation.item.input_audio_transcription.completed")
	if !strings.HasPrefix(ev["transcript"].(string), "Simulated transcript of") {
		t.Errorf("transcript = %v", ev)
	}
	c.until("response.done")
}
