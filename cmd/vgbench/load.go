package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// profile is one kind of session load.
type profile struct {
	Name    string
	About   string
	Format  string        // input and output audio: "pcm" (PCM16 24 kHz) or "pcmu" (G.711 μ-law 8 kHz)
	Every   time.Duration // client append period; 0 sends none
	TalkFor time.Duration // client speech before each turn (commit + response.create); 0 = no turns
	Burst   bool          // response.create again as soon as each response is done (fast-paced simulator)
}

var (
	profTalk = profile{Name: "talk", Format: "pcm", Every: 20 * time.Millisecond, TalkFor: 5400 * time.Millisecond,
		About: "20 ms PCM16 appends at real-time pace; a turn (commit + response.create) after 5.4 s of talk, " +
			"the simulator answers with ≈3.6 s of audio in real time (≈40% duty), response.done per turn"}
	profTel = profile{Name: "telephony", Format: "pcmu", Every: 20 * time.Millisecond, TalkFor: 5400 * time.Millisecond,
		About: "talk with G.711 μ-law 8 kHz both ways (160-byte appends every 20 ms)"}
	profBurst = profile{Name: "burst", Format: "pcm", Burst: true,
		About: "the simulator streams every response as fast as it can (PaceFast); the client asks for the next at each response.done"}
	profIdle = profile{Name: "idle", Format: "pcm",
		About: "connected sessions that send nothing"}
)

// collector gathers one run's figures. The simulator's probe reaches the
// collector of the run in progress through active.
type collector struct {
	up, down, setup, mint samples

	sentUp, gotUp, reorderUp      atomic.Int64
	gotDown, wantDown, reorderDwn atomic.Int64
	bytesUp, bytesDown            atomic.Int64
	turns                         atomic.Int64
	errs                          atomic.Int64
	firstErr                      atomic.Pointer[string]
	lastSeq                       []atomic.Int64 // per session: last append seq seen upstream
}

var active atomic.Pointer[collector]

// debug prints session 0's server events (VGBENCH_DEBUG=1).
var debug = os.Getenv("VGBENCH_DEBUG") == "1"

func (c *collector) fail(format string, args ...any) {
	c.errs.Add(1)
	msg := fmt.Sprintf(format, args...)
	c.firstErr.CompareAndSwap(nil, &msg)
}

// clientAppend is the simulator probe: event_id "b<session>_<seq>_<due ns>".
func clientAppend(eventID []byte) {
	c := active.Load()
	if c == nil || len(eventID) < 2 || eventID[0] != 'b' {
		return
	}
	now := time.Now().UnixNano()
	f := bytes.SplitN(eventID[1:], []byte{'_'}, 3)
	if len(f) != 3 {
		return
	}
	sess, _ := strconv.Atoi(string(f[0]))
	seq, _ := strconv.ParseInt(string(f[1]), 10, 64)
	due, _ := strconv.ParseInt(string(f[2]), 10, 64)
	if sess < 0 || sess >= len(c.lastSeq) {
		return
	}
	c.gotUp.Add(1)
	if last := c.lastSeq[sess].Swap(seq); seq <= last {
		c.reorderUp.Add(1)
	}
	c.up.add(now - due)
}

// endpoint is how a client reaches the Realtime API through a target.
type endpoint struct {
	url     string // ws://…/v1/realtime?model=…
	simKey  string // Bearer sent by clients of pass-through targets
	mintURL string // voicegate: POST client_secrets here with adminKey
	admin   string
	tier    string
}

// runSpec is one measured run: one target, one profile, n sessions.
type runSpec struct {
	ep       endpoint
	prof     profile
	sessions int
	dur      time.Duration
	pid      int // the target's process (0: none, direct)
	seq      int // distinct users per run
	// ready, when set, is called once every session is connected, before
	// the load starts (the idle profile's heap snapshot).
	ready func()
}

// runResult is a run's figures.
type runResult struct {
	Target, Profile string
	Sessions        int
	Dur             time.Duration
	Up, Down        dist
	Setup, Mint     dist
	SentUp, GotUp   int64
	ReorderUp       int64
	GotDown         int64
	WantDown        int64
	ReorderDown     int64
	BytesUp         int64
	BytesDown       int64
	Turns           int64
	Errors          int64
	FirstErr        string
	CPU             time.Duration // the target's, during the measured window
	GenCPU          time.Duration // this process (load and simulator)
	RSSBase, RSSMax int64
	Connected       int
}

// Lost is how many frames did not arrive either way.
func (r runResult) Lost() int64 {
	return max(r.SentUp-r.GotUp, 0) + max(r.WantDown-r.GotDown, 0)
}

// Clean reports no loss, reorder or error.
func (r runResult) Clean() bool {
	return r.Lost() == 0 && r.ReorderUp == 0 && r.ReorderDown == 0 && r.Errors == 0 && r.Connected == r.Sessions
}

var (
	pcmSilence  = base64.StdEncoding.EncodeToString(make([]byte, 960)) // 20 ms PCM16 24 kHz
	pcmuSilence = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160))
)

// run performs one run and returns its figures.
func run(ctx context.Context, spec runSpec) runResult {
	c := &collector{lastSeq: make([]atomic.Int64, spec.sessions)}
	for i := range c.lastSeq {
		c.lastSeq[i].Store(-1)
	}
	active.Store(c)
	defer active.Store(nil)
	ctx, cancel := context.WithTimeout(ctx, spec.dur+90*time.Second)
	defer cancel()

	base := treeStat(spec.pid)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var connected atomic.Int64
	dialSem := make(chan struct{}, 16) // bounded connection ramp
	for i := 0; i < spec.sessions; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			dialSem <- struct{}{}
			s, err := open(ctx, spec, c, i)
			<-dialSem
			ready.Done()
			if err != nil {
				c.fail("session %d: %v", i, err)
				return
			}
			connected.Add(1)
			defer s.close()
			select {
			case <-start:
			case <-ctx.Done():
				return
			}
			s.drive(ctx, spec)
		}()
	}
	ready.Wait()
	if spec.ready != nil {
		spec.ready()
	}
	t0, g0, cpu0 := time.Now(), selfCPU(), treeStat(spec.pid)
	var rssMax atomic.Int64
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // owner: run; ends with stopSample
		defer close(sampled)
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSample:
				return
			case <-tk.C:
				if r := treeStat(spec.pid).RSS; r > rssMax.Load() {
					rssMax.Store(r)
				}
			}
		}
	}()
	close(start)
	done.Wait()
	close(stopSample)
	<-sampled
	cpu1, g1 := treeStat(spec.pid), selfCPU()
	time.Sleep(300 * time.Millisecond) // appends still in flight reach the simulator
	r := runResult{
		Target: "", Profile: spec.prof.Name, Sessions: spec.sessions, Dur: time.Since(t0),
		Up: c.up.dist(), Down: c.down.dist(), Setup: c.setup.dist(), Mint: c.mint.dist(),
		SentUp: c.sentUp.Load(), GotUp: c.gotUp.Load(), ReorderUp: c.reorderUp.Load(),
		GotDown: c.gotDown.Load(), WantDown: c.wantDown.Load(), ReorderDown: c.reorderDwn.Load(),
		BytesUp: c.bytesUp.Load(), BytesDown: c.bytesDown.Load(), Turns: c.turns.Load(),
		Errors: c.errs.Load(), CPU: cpu1.CPU - cpu0.CPU, GenCPU: g1 - g0,
		RSSBase: base.RSS, RSSMax: max(rssMax.Load(), cpu0.RSS), Connected: int(connected.Load()),
	}
	if e := c.firstErr.Load(); e != nil {
		r.FirstErr = *e
	}
	return r
}

// client is one benchmark session.
type client struct {
	c       *websocket.Conn
	col     *collector
	idx     int
	updated chan struct{} // session.updated
	doneCh  chan struct{} // response.done
	readEnd chan struct{}
}

// open mints (voicegate), connects, waits for session.created and sets
// manual turns and the profile's audio format.
func open(ctx context.Context, spec runSpec, col *collector, idx int) (*client, error) {
	ep := spec.ep
	key := ep.simKey
	if ep.mintURL != "" {
		t0 := time.Now()
		tok, err := mint(ctx, http.DefaultClient, ep.mintURL, ep.admin, ep.tier, fmt.Sprintf("b%d_%d", spec.seq, idx))
		if err != nil {
			return nil, err
		}
		col.mint.add(int64(time.Since(t0)))
		key = tok
	}
	t0 := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, ep.url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + key}},
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	conn.SetReadLimit(32 << 20)
	s := &client{c: conn, col: col, idx: idx, updated: make(chan struct{}, 4), doneCh: make(chan struct{}, 16), readEnd: make(chan struct{})}
	created := make(chan struct{})
	go s.read(ctx, created) // owner: client; ends when the connection closes
	select {
	case <-created:
	case <-dctx.Done():
		s.close()
		return nil, fmt.Errorf("no session.created: %w", dctx.Err())
	}
	col.setup.add(int64(time.Since(t0)))
	format := "audio/pcm"
	if spec.prof.Format == "pcmu" {
		format = "audio/pcmu"
	}
	fmtJSON := `{"type":"` + format + `"`
	if format == "audio/pcm" {
		fmtJSON += `,"rate":24000`
	}
	fmtJSON += `}`
	upd := `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":` + fmtJSON +
		`,"turn_detection":null},"output":{"format":` + fmtJSON + `}}}}`
	if err := conn.Write(dctx, websocket.MessageText, []byte(upd)); err != nil {
		s.close()
		return nil, fmt.Errorf("session.update: %w", err)
	}
	select {
	case <-s.updated:
	case <-dctx.Done():
		s.close()
		return nil, fmt.Errorf("no session.updated: %w", dctx.Err())
	}
	return s, nil
}

var (
	deltaHead = []byte(`{"type":"response.output_audio.delta","event_id":"event_t`)
	typeDone  = []byte(`"type":"response.done"`)
	typeErr   = []byte(`"type":"error"`)
	typeCrt   = []byte(`"type":"session.created"`)
	typeUpd   = []byte(`"type":"session.updated"`)
)

// read consumes server events: audio deltas are timed, response.done
// says how many deltas the response had, errors are counted.
func (s *client) read(ctx context.Context, created chan struct{}) {
	defer close(s.readEnd)
	var last int64
	createdOnce := false
	for {
		_, b, err := s.c.Read(ctx)
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if debug && s.idx == 0 {
			fmt.Fprintf(os.Stderr, "vgbench debug: %.160s\n", b)
		}
		s.col.bytesDown.Add(int64(len(b)))
		if bytes.HasPrefix(b, deltaHead) {
			rest := b[len(deltaHead):]
			j := bytes.IndexByte(rest, '"')
			if ns, err := strconv.ParseInt(string(rest[:max(j, 0)]), 10, 64); err == nil {
				s.col.gotDown.Add(1)
				if ns < last {
					s.col.reorderDwn.Add(1)
				}
				last = ns
				s.col.down.add(now - ns)
			}
			continue
		}
		head := b // a gateway may reorder members (voicegate rewrites session.created)
		switch {
		case bytes.Contains(head, typeDone):
			var ev struct {
				Response struct {
					Status string `json:"status"`
					Usage  struct {
						Output struct {
							Audio int64 `json:"audio_tokens"`
						} `json:"output_token_details"`
					} `json:"usage"`
				} `json:"response"`
			}
			if err := json.Unmarshal(b, &ev); err == nil {
				// 20 audio tokens per second, one delta per 200 ms.
				s.col.wantDown.Add(ev.Response.Usage.Output.Audio / 4)
				if ev.Response.Status != "completed" {
					s.col.fail("response %s", ev.Response.Status)
				}
			}
			s.col.turns.Add(1)
			select {
			case s.doneCh <- struct{}{}:
			default:
			}
		case bytes.Contains(head, typeErr):
			s.col.fail("error event: %.200s", b)
		case bytes.Contains(head, typeCrt) && !createdOnce:
			createdOnce = true
			close(created)
		case bytes.Contains(head, typeUpd):
			select {
			case s.updated <- struct{}{}:
			default:
			}
		}
	}
}

// drive sends the profile's load for spec.dur, open loop: append k is due
// at start + k·Every and carries that due time, so a sender held up by
// back-pressure charges the wait to every frame it delayed (no
// coordinated omission).
func (s *client) drive(ctx context.Context, spec runSpec) {
	p := spec.prof
	start := time.Now()
	end := start.Add(spec.dur)
	write := func(b []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.c.Write(wctx, websocket.MessageText, b); err != nil {
			s.col.fail("write: %v", err)
			return false
		}
		return true
	}
	respCreate := []byte(`{"type":"response.create"}`)
	waitDone := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.doneCh:
			return true
		case <-t.C:
			return false
		case <-s.readEnd:
			return false
		}
	}
	switch {
	case p.Burst:
		for time.Now().Before(end) {
			if !write(respCreate) {
				return
			}
			if !waitDone(30 * time.Second) {
				s.col.fail("burst: no response.done within 30 s")
				return
			}
		}
		return
	case p.Every == 0:
		select {
		case <-time.After(spec.dur):
		case <-ctx.Done():
		}
		return
	}
	audio := pcmSilence
	if p.Format == "pcmu" {
		audio = pcmuSilence
	}
	buf := make([]byte, 0, len(audio)+128)
	turnAt := start.Add(p.TalkFor)
	waiting := false
	for k := int64(0); ; k++ {
		due := start.Add(time.Duration(k) * p.Every)
		if !due.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		buf = buf[:0]
		buf = append(buf, `{"type":"input_audio_buffer.append","event_id":"b`...)
		buf = strconv.AppendInt(buf, int64(s.idx), 10)
		buf = append(buf, '_')
		buf = strconv.AppendInt(buf, k, 10)
		buf = append(buf, '_')
		buf = strconv.AppendInt(buf, due.UnixNano(), 10)
		buf = append(buf, `","audio":"`...)
		buf = append(buf, audio...)
		buf = append(buf, `"}`...)
		if !write(buf) {
			return
		}
		s.col.sentUp.Add(1)
		s.col.bytesUp.Add(int64(len(buf)))
		if waiting {
			select {
			case <-s.doneCh:
				waiting = false
				turnAt = time.Now().Add(p.TalkFor)
			default:
			}
		}
		if p.TalkFor > 0 && !waiting && !due.Before(turnAt) {
			if !write([]byte(`{"type":"input_audio_buffer.commit"}`)) || !write(respCreate) {
				return
			}
			waiting = true
		}
	}
	if waiting && !waitDone(10*time.Second) {
		s.col.fail("talk: no response.done within 10 s of the end")
	}
}

func (s *client) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	closed := make(chan struct{})
	go func() { _ = s.c.Close(websocket.StatusNormalClosure, ""); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		_ = s.c.CloseNow()
		<-closed
	}
}

// mint asks voicegate for a session token for user in tier.
func mint(ctx context.Context, hc *http.Client, url, admin, tier, user string) (string, error) {
	body := `{"session":{"type":"realtime","model":"gpt-realtime"},"user":"` + user + `","tier":"` + tier + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Value == "" {
		return "", fmt.Errorf("mint: HTTP %d (%v)", resp.StatusCode, err)
	}
	return out.Value, nil
}
