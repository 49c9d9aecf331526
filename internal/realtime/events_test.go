package realtime

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestErrorEvent(t *testing.T) {
	b := ErrorEvent("session_revoked", "the session was revoked", "evt_1")
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	e := got["error"].(map[string]any)
	if got["type"] != "error" || !strings.HasPrefix(got["event_id"].(string), "event_") || len(got["event_id"].(string)) != len("event_")+21 {
		t.Errorf("envelope = %s", b)
	}
	if e["type"] != "voicegate_error" || e["code"] != "session_revoked" || e["message"] != "the session was revoked" || e["event_id"] != "evt_1" {
		t.Errorf("error = %v", e)
	}
	if typ, ok := EventType(b); !ok || typ != "error" {
		t.Errorf("EventType = %q %v", typ, ok)
	}
	if strings.Contains(string(ErrorEvent("x", "y", "")), `"event_id":""`) {
		t.Error("empty client event id should be omitted")
	}
}

func TestDecodeResponseDone(t *testing.T) {
	// The capture's response.done (protocol notes §4.5).
	frame := []byte(`{"type":"response.done","event_id":"event_1","response":{"object":"realtime.response","id":"resp_CsZyL5IuqSgPEut0cI82K","status":"completed","status_details":null,"output":[],"conversation_id":"conv_1","output_modalities":["audio"],"max_output_tokens":"inf","usage":{"total_tokens":320,"input_tokens":132,"output_tokens":188,"input_token_details":{"text_tokens":59,"audio_tokens":73,"image_tokens":0,"cached_tokens":64,"cached_tokens_details":{"text_tokens":0,"audio_tokens":64,"image_tokens":0}},"output_token_details":{"text_tokens":41,"audio_tokens":147}},"metadata":null}}`)
	e, err := DecodeResponseEvent(frame)
	if err != nil {
		t.Fatal(err)
	}
	if e.Response.ID != "resp_CsZyL5IuqSgPEut0cI82K" || e.Response.Status != "completed" || e.Response.Usage == nil {
		t.Fatalf("decoded %+v", e)
	}
	f := e.Response.Usage.Flat()
	if f.TotalTokens != 320 || f.InputTextTokens != 59 || f.CachedAudioTokens != 64 || f.OutputAudioTokens != 147 {
		t.Errorf("flat usage = %+v", f)
	}
	created, err := DecodeResponseEvent([]byte(`{"type":"response.created","response":{"id":"resp_2","status":"in_progress","usage":null}}`))
	if err != nil || created.Response.Usage != nil || created.Response.ID != "resp_2" {
		t.Errorf("response.created = %+v, %v", created, err)
	}
	if _, err := DecodeResponseEvent([]byte(`{"type":"response.done","response":{}}`)); err == nil {
		t.Error("response without id accepted")
	}
}

func TestDecodeSessionEvent(t *testing.T) {
	e, err := DecodeSessionEvent([]byte(`{"type":"session.created","event_id":"event_1","session":{"type":"realtime","model":"gpt-realtime","instructions":"x"}}`))
	if err != nil || SessionModel(e.Session) != "gpt-realtime" || e.EventID != "event_1" {
		t.Errorf("session event = %+v, %v", e, err)
	}
	if ClientEventID([]byte(`{"type":"x","event_id":"c1"}`)) != "c1" || ClientEventID([]byte(`[`)) != "" {
		t.Error("ClientEventID")
	}
}
