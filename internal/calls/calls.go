package calls

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/live"
	"github.com/voicegate/voicegate/internal/relay"
	"github.com/voicegate/voicegate/internal/store"
)

// Defaults of the zero-valued fields of Calls.
const (
	DefaultAbandonWait = 5 * time.Second
	maxAnswerBytes     = 256 << 10
	requestTimeout     = 15 * time.Second
)

// Calls places and governs WebRTC calls. Its exported fields are set
// before first use.
type Calls struct {
	// Upstream is the API base URL, e.g. "https://api.openai.com/v1".
	Upstream string
	// APIKey is the server key, for the call, its sideband and hangups.
	APIKey relay.Secret
	// HTTPClient performs upstream requests and dials; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Governor governs every call; required.
	Governor *govern.Governor
	// Logger receives call lines; nil discards.
	Logger *slog.Logger
	// Metrics, when non-nil, counts calls and live calls.
	Metrics *Metrics
	// AbandonWait bounds the wait for outstanding responses when the
	// gateway ends a call; 0 means 5 s.
	AbandonWait time.Duration
	// Now is the clock of call durations; nil means time.Now.
	Now func() time.Time

	initOnce   sync.Once
	base       context.Context
	cancelBase context.CancelFunc
	live       live.Set[*call]
}

// Request is one call to place.
type Request struct {
	// Session is the authenticated session the call belongs to.
	Session *store.Session
	// Offer is the browser's SDP offer.
	Offer []byte
	// SafetyID is sent upstream as OpenAI-Safety-Identifier when non-empty.
	SafetyID string
	// Admission holds the session's slots; the call holds and renews it
	// for its life and releases it at the end (on failure too).
	Admission *govern.Admission
}

// UpstreamError is an upstream refusal of a call, to pass through: its
// HTTP status and OpenAI error body.
type UpstreamError struct {
	Status int
	Body   []byte
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream answered %d", e.Status)
}

// ErrUnavailable reports that upstream or its sideband could not be
// reached: the call was not placed (or was hung up at once).
var ErrUnavailable = errors.New("calls: upstream unavailable")

func (c *Calls) init() {
	c.initOnce.Do(func() {
		c.base, c.cancelBase = context.WithCancel(context.Background())
	})
}

func (c *Calls) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Calls) client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Calls) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Calls) abandonWait() time.Duration {
	if c.AbandonWait > 0 {
		return c.AbandonWait
	}
	return DefaultAbandonWait
}

// Create places the call: the offer and the governor's call config go
// upstream with the server key, the sideband is attached, and the call is
// governed until it ends. It returns the SDP answer and the call id the
// client sees. The admission is released when Create fails.
func (c *Calls) Create(ctx context.Context, req Request) (answer []byte, id string, err error) {
	c.init()
	holdCtx, stopHold := context.WithCancel(context.WithoutCancel(ctx))
	held := make(chan struct{})
	go func() { defer close(held); req.Admission.Hold(holdCtx) }() // owner: the call (or this function on failure)
	release := func() { stopHold(); <-held }

	if c.live.Shutting() {
		release()
		return nil, "", ErrUnavailable
	}
	log := c.logger().With("session_id", req.Session.ID, "user", req.Session.User)
	cl := &call{c: c, rec: req.Session, log: log, kill: make(chan ending, 1), doneCh: make(chan struct{}), release: release}
	cl.gov = c.Governor.Open(req.Session, govern.Hooks{
		Sideband: true,
		Upstream: func(ctx context.Context, frame []byte) error {
			return cl.side.Write(ctx, websocket.MessageText, frame)
		},
		End: func(r *govern.Refusal) { cl.end(ending{by: "gateway", code: r.Code}) },
	})
	fail := func(err error) ([]byte, string, error) {
		cl.gov.Close(context.WithoutCancel(ctx))
		release()
		return nil, "", err
	}
	cfg, err := cl.gov.CallConfig()
	if err != nil {
		return fail(err)
	}
	answer, upID, err := c.post(ctx, req.Offer, cfg, req.SafetyID)
	if err != nil {
		var ue *UpstreamError
		if errors.As(err, &ue) {
			c.Metrics.outcome("refused_upstream")
		} else {
			c.Metrics.outcome("upstream_unavailable")
		}
		log.Warn("call not placed upstream", "err", err)
		return fail(err)
	}
	cl.upID = upID
	side, err := c.dialSideband(ctx, upID)
	if err != nil {
		c.Metrics.outcome("sideband_failed")
		log.Warn("sideband not attached: hanging up the call", "call_id", upID, "err", err)
		if herr := c.hangupUpstream(context.WithoutCancel(ctx), upID); herr != nil {
			log.Error("hangup of an ungoverned call failed", "call_id", upID, "err", herr)
		}
		return fail(fmt.Errorf("%w: sideband: %w", ErrUnavailable, err))
	}
	cl.side = side
	if !c.live.Add(cl, cl.rec) {
		_ = side.CloseNow()
		_ = c.hangupUpstream(context.WithoutCancel(ctx), upID)
		return fail(ErrUnavailable)
	}
	c.Metrics.outcome("placed")
	go cl.run() // owner: Calls (wg); ends with the call
	return answer, c.publicID(req.Session.ID, upID), nil
}

// post sends the offer upstream as the unified multipart form.
func (c *Calls) post(ctx context.Context, offer, session []byte, safetyID string) ([]byte, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct {
		name, ctype string
		data        []byte
	}{{"sdp", "application/sdp", offer}, {"session", "application/json", session}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.name))
		h.Set("Content-Type", p.ctype)
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		_, _ = w.Write(p.data)
	}
	_ = mw.Close()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := c.apiURL("/realtime/calls")
	if err != nil {
		return nil, "", err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &body)
	if err != nil {
		return nil, "", err
	}
	hr.Header.Set("Content-Type", mw.FormDataContentType())
	hr.Header.Set("Authorization", "Bearer "+string(c.APIKey))
	if safetyID != "" {
		hr.Header.Set("OpenAI-Safety-Identifier", safetyID)
	}
	resp, err := c.client().Do(hr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, "", fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, "", &UpstreamError{Status: resp.StatusCode, Body: data}
	}
	loc := resp.Header.Get("Location")
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	if id == "" {
		return nil, "", fmt.Errorf("%w: answer without a Location", ErrUnavailable)
	}
	return data, id, nil
}

// dialSideband attaches the call's sideband with the server key.
func (c *Calls) dialSideband(ctx context.Context, upID string) (*websocket.Conn, error) {
	u, err := url.Parse(c.Upstream)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	case "http", "ws":
		u.Scheme = "ws"
	default:
		return nil, errors.New("calls: upstream url must be http(s) or ws(s)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/realtime"
	u.RawQuery = url.Values{"call_id": {upID}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+string(c.APIKey))
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.client(), HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(relay.DefaultReadLimit) // the sideband carries the same events as a relayed session
	return conn, nil
}

// hangupUpstream ends the call upstream.
func (c *Calls) hangupUpstream(ctx context.Context, upID string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := c.apiURL("/realtime/calls/" + url.PathEscape(upID) + "/hangup")
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+string(c.APIKey))
	resp, err := c.client().Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("upstream hangup answered %d", resp.StatusCode)
	}
	return nil
}

func (c *Calls) apiURL(path string) (string, error) {
	u, err := url.Parse(c.Upstream)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String(), nil
}

// publicID is the call id the client sees: the upstream id and a
// signature binding it to the session (any instance can check it).
func (c *Calls) publicID(sessionID, upID string) string {
	return upID + "_" + c.sign(sessionID, upID)
}

func (c *Calls) sign(sessionID, upID string) string {
	k := sha256.Sum256([]byte("voicegate/call-id\x00" + string(c.APIKey)))
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(sessionID + "\x00" + upID))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// upstreamID checks that id is a call of sessionID and returns its
// upstream id.
func (c *Calls) upstreamID(sessionID, id string) (string, bool) {
	i := strings.LastIndexByte(id, '_')
	if i <= 0 {
		return "", false
	}
	upID, sig := id[:i], id[i+1:]
	return upID, hmac.Equal([]byte(sig), []byte(c.sign(sessionID, upID)))
}

// ErrNoSuchCall is returned by Hangup for a call id that is not the
// session's.
var ErrNoSuchCall = errors.New("calls: no such call for this session")

// Hangup ends the call id of session sess at the client's request: on
// this instance when it governs the call (its outstanding responses are
// settled first), else upstream directly (the governing instance sees its
// sideband close).
func (c *Calls) Hangup(ctx context.Context, sess *store.Session, id string) error {
	c.init()
	upID, ok := c.upstreamID(sess.ID, id)
	if !ok {
		return ErrNoSuchCall
	}
	if found := c.live.Select(func(x *call, _ *store.Session) bool { return x.upID == upID }); len(found) > 0 {
		cl := found[0]
		cl.end(ending{by: "client", code: "hangup"})
		select {
		case <-cl.done():
		case <-ctx.Done():
		}
		return nil
	}
	return c.hangupUpstream(ctx, upID)
}

// CloseSessions ends every live call on this instance whose session
// matches, with the gateway ending reason (the call is hung up upstream
// after its outstanding responses are settled); code and message are
// those of the WebSocket engine's CloseSessions and unused by calls. It
// reports how many calls it ended.
func (c *Calls) CloseSessions(match func(*store.Session) bool, _ websocket.StatusCode, reason, _ string) int {
	hit := c.live.Select(func(_ *call, rec *store.Session) bool { return match(rec) })
	for _, cl := range hit {
		cl.end(ending{by: "gateway", code: reason})
	}
	return len(hit)
}

// IsLive reports whether session id has a live call on this instance.
func (c *Calls) IsLive(sessionID string) bool { return c.live.Has(sessionID) }

// LiveCount reports the live calls on this instance.
func (c *Calls) LiveCount() int { return c.live.Len() }

// Shutdown ends every live call (settled, then hung up: a call the
// gateway can no longer govern does not go on) and waits for them,
// bounded by ctx.
func (c *Calls) Shutdown(ctx context.Context) error {
	c.init()
	for _, cl := range c.live.Close() {
		cl.end(ending{by: "gateway", code: "going_away"})
	}
	done := c.live.Done()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.cancelBase()
		<-done
		return ctx.Err()
	}
}
