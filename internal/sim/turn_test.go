package sim

import (
	"testing"
)

func TestVoiceTurnServerVAD(t *testing.T) {
	s, hs := startSim(t, Options{Pace: PaceFast})
	c := mustDial(t, hs, "?model=gpt-realtime")
	c.appendAudio(silence(200), 40)
	c.appendAudio(speech(1000), 40)
	c.appendAudio(silence(600), 40)

	started, _ := c.until("input_audio_buffer.speech_started")
	if got := num(started, "audio_start_ms"); got != 0 { // 200 ms in, minus 300 ms padding
		t.Errorf("audio_start_ms = %d, want 0", got)
	}
	stopped, _ := c.until("input_audio_buffer.speech_stopped")
	if got := num(stopped, "audio_end_ms"); got < 1100 || got > 1400 {
		t.Errorf("audio_end_ms = %d, want about 1200", got)
	}
	done, seen := c.until("response.done")
	want := []string{"input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
		"response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.added",
		"response.content_part.added", "response.output_audio_transcript.delta", "response.output_audio.delta",
		"response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
		"response.output_item.done", "conversation.item.done"}
	last := -1
	for _, w := range want {
		i := indexOf(seen[last+1:], w)
		if i < 0 {
			t.Fatalf("missing %s after index %d in %v", w, last, seen)
		}
		last += i + 1
	}
	resp := done["response"].(map[string]any)
	if resp["status"] != "completed" {
		t.Fatalf("status = %v", resp["status"])
	}
	u := usageOf(t, done)
	// committed audio: 200 + 1000 + 200 ms of trailing silence = 1400 ms → 14 tokens
	if got := num(u, "input_token_details", "audio_tokens"); got != 14 {
		t.Errorf("input audio tokens = %d, want 14", got)
	}
	text := "This is simulated reply number 1 to 1.4 seconds of audio."
	out := resp["output"].([]any)[0].(map[string]any)
	if tr := out["content"].([]any)[0].(map[string]any)["transcript"]; tr != text {
		t.Errorf("transcript = %q, want %q", tr, text)
	}
	wantAudio := outputAudioMs(text) / 50
	if got := num(u, "output_token_details", "audio_tokens"); got != wantAudio {
		t.Errorf("output audio tokens = %d, want %d", got, wantAudio)
	}
	if num(u, "total_tokens") != num(u, "input_tokens")+num(u, "output_tokens") {
		t.Errorf("total != input + output: %v", u)
	}
	l := s.Ledger()
	if len(l) != 1 || l[0].ResponseID != resp["id"] || l[0].Usage.OutputTokens != int64(num(u, "output_tokens")) {
		t.Errorf("ledger = %+v", l)
	}
}
