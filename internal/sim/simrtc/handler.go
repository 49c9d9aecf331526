package simrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/voicegate/voicegate/internal/sim"
)

const (
	maxSDPBytes     = 256 << 10
	maxSessionBytes = 1 << 20
)

// keyInfo is what the handler needs to know about the caller's key.
type keyInfo struct {
	ephemeral bool
	session   json.RawMessage
}

// engine is the part of the simulator the handler drives; New adapts
// *sim.Server to it.
type engine struct {
	authorize func(authorization string) (keyInfo, error)
	startCall func(ctx context.Context, t sim.AudioTransport, session json.RawMessage) (callID string, err error)
}

// handler serves POST /v1/realtime/calls.
type handler struct {
	eng    engine
	cfg    config
	api    *webrtc.API
	apiErr error
}

func newHandler(eng engine, opts []Option) *handler {
	h := &handler{eng: eng, cfg: newConfig(opts)}
	h.api, h.apiErr = newAPI(h.cfg.settings)
	return h
}

// ServeHTTP reads the offer, answers it with a pion peer connection that has
// gathered its candidates, and starts the call's session in the simulator.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, errMethod)
		return
	}
	key, err := h.eng.authorize(r.Header.Get("Authorization"))
	if err != nil {
		// The engine's error may describe the key; it goes nowhere.
		writeError(w, errInvalidKey)
		return
	}
	offer, session, apiErr := readOffer(r, key)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	sendAudio, apiErr := checkOffer(offer)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	c, answer, err := h.answer(r.Context(), offer, sendAudio)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			h.cfg.logger.Error("answer webrtc offer", "err", err)
			ae = errInternal
		}
		writeError(w, ae)
		return
	}
	callID, err := h.eng.startCall(r.Context(), c, session)
	if err != nil {
		// The engine refuses a call only for its session config.
		_ = c.Close()
		writeError(w, badRequest("invalid_value", "session",
			fmt.Sprintf("The session configuration was refused (%v).", err)))
		return
	}
	h.cfg.logger.Info("webrtc call started", "call_id", callID)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/v1/realtime/calls/"+callID)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// answer creates the simulator's peer connection for offer and returns the
// call wrapping it and the SDP answer with every candidate gathered. With
// sendAudio, the simulator sends its audio track to the peer.
func (h *handler) answer(ctx context.Context, offer string, sendAudio bool) (*call, string, error) {
	if h.apiErr != nil {
		return nil, "", h.apiErr
	}
	pc, err := h.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("new peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(pcmuCodec.RTPCodecCapability, "audio", "voicegate-sim")
	if err != nil {
		_ = pc.Close()
		return nil, "", fmt.Errorf("new audio track: %w", err)
	}
	c := newCall(pc, track, h.cfg.connectTimeout, h.cfg.logger)
	fail := func(err error) (*call, string, error) {
		_ = c.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		h.cfg.logger.Debug("set remote description", "err", err)
		return fail(badRequest("invalid_offer", "sdp", "The SDP offer could not be applied."))
	}
	if sendAudio {
		sender, err := pc.AddTrack(track)
		if err != nil {
			return fail(fmt.Errorf("add audio track: %w", err))
		}
		// Drain RTCP so pion's buffers never fill; ends when pc closes.
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	sdpAnswer, err := pc.CreateAnswer(nil)
	if err != nil {
		h.cfg.logger.Debug("create answer", "err", err)
		return fail(badRequest("invalid_offer", "sdp", "The SDP offer could not be answered."))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(sdpAnswer); err != nil {
		return fail(fmt.Errorf("set local description: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("gather candidates: %w", ctx.Err()))
	}
	return c, pc.LocalDescription().SDP, nil
}

// readOffer reads the SDP offer and the session config from either request
// form of protocol §3.1.
func readOffer(r *http.Request, key keyInfo) (offer string, session json.RawMessage, _ *apiError) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mediaType = ""
	}
	switch mediaType {
	case "application/sdp":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSDPBytes+1))
		if err != nil {
			return "", nil, badRequest("invalid_request", "sdp", "The SDP offer could not be read.")
		}
		if len(body) > maxSDPBytes {
			return "", nil, badRequest("invalid_offer", "sdp", "The SDP offer is too large.")
		}
		return string(body), key.session, nil
	case "multipart/form-data":
		return readMultipart(multipart.NewReader(r.Body, params["boundary"]), key)
	default:
		return "", nil, badRequest("unsupported_content_type", "",
			"Send the SDP offer as application/sdp, or as the part \"sdp\" of multipart/form-data.")
	}
}

// readMultipart reads the parts "sdp" and "session"; others are ignored.
func readMultipart(mr *multipart.Reader, key keyInfo) (offer string, session json.RawMessage, _ *apiError) {
	var gotSDP bool
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, badRequest("invalid_request", "", "The multipart body could not be read.")
		}
		name := part.FormName()
		limit := int64(maxSDPBytes)
		if name == "session" {
			limit = maxSessionBytes
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		_ = part.Close()
		if err != nil {
			return "", nil, badRequest("invalid_request", name, "The multipart body could not be read.")
		}
		if int64(len(data)) > limit {
			return "", nil, badRequest("invalid_request", name, fmt.Sprintf("The part %q is too large.", name))
		}
		switch name {
		case "sdp":
			offer, gotSDP = string(data), true
		case "session":
			session = json.RawMessage(data)
		}
	}
	if !gotSDP {
		return "", nil, badRequest("missing_required_parameter", "sdp", "Missing required parameter: 'sdp'.")
	}
	if session == nil {
		return offer, key.session, nil
	}
	if key.ephemeral {
		return "", nil, badRequest("invalid_request", "session",
			"The session of a call made with an ephemeral key comes from the key; do not send a 'session' part.")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(session, &obj); err != nil || obj == nil {
		return "", nil, badRequest("invalid_json", "session", "The 'session' part must be a JSON object.")
	}
	return offer, session, nil
}

// checkOffer rejects offers the simulator cannot serve: unparsable SDP, no
// data channel for the events, or audio without PCMU. It reports whether the
// peer wants to receive audio (an audio section that is not sendonly).
func checkOffer(offer string) (sendAudio bool, _ *apiError) {
	if strings.TrimSpace(offer) == "" {
		return false, badRequest("missing_required_parameter", "sdp", "The SDP offer is empty.")
	}
	parsed, err := (&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}).Unmarshal()
	if err != nil {
		return false, badRequest("invalid_offer", "sdp", "The SDP offer could not be parsed.")
	}
	var hasData bool
	for _, m := range parsed.MediaDescriptions {
		switch m.MediaName.Media {
		case "application":
			hasData = true
		case "audio":
			if m.MediaName.Port.Value == 0 {
				continue
			}
			pcmu, direction := false, "sendrecv"
			for _, f := range m.MediaName.Formats {
				if f == "0" {
					pcmu = true
				}
			}
			for _, a := range m.Attributes {
				switch a.Key {
				case "rtpmap":
					if strings.Contains(strings.ToUpper(a.Value), " PCMU/8000") {
						pcmu = true
					}
				case "sendrecv", "sendonly", "recvonly", "inactive":
					direction = a.Key
				}
			}
			if !pcmu {
				return false, badRequest("unsupported_codec", "sdp",
					"The simulator only supports PCMU (G.711 μ-law) audio; offer it alongside Opus.")
			}
			if direction == "sendrecv" || direction == "recvonly" {
				sendAudio = true
			}
		}
	}
	if !hasData {
		return false, badRequest("invalid_offer", "sdp", "The SDP offer has no data channel; create one labelled \"oai-events\".")
	}
	return sendAudio, nil
}
