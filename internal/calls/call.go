package calls

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/realtime"
	"github.com/voicegate/voicegate/internal/store"
)

// ending says why a call ends.
type ending struct {
	by   string // "client" (hangup), "upstream" (the call ended there), "gateway"
	code string
}

// call is one governed call: its sideband, its governor, and the
// supervisor (run) that owns both.
type call struct {
	c       *Calls
	rec     *store.Session
	log     *slog.Logger
	gov     *govern.Session
	side    *websocket.Conn
	upID    string
	release func() // stops renewing the admission's leases and releases them

	kill     chan ending   // buffered 1: the first end wins
	doneCh   chan struct{} // closed when run returns
	mu       sync.Mutex
	activity time.Time // last sign of the client: speech, a commit
}

func (cl *call) end(e ending) {
	select {
	case cl.kill <- e:
	default:
	}
}

func (cl *call) done() <-chan struct{} { return cl.doneCh }

func (cl *call) touch() {
	cl.mu.Lock()
	cl.activity = time.Now()
	cl.mu.Unlock()
}

func (cl *call) quiet() time.Duration {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return time.Since(cl.activity)
}

// run governs the call until it ends: the sideband's events go through
// the governor; the duration and idle limits, revocations and the
// governor's own refusals end it with an upstream hangup after its
// outstanding responses are settled.
func (cl *call) run() {
	c := cl.c
	defer close(cl.doneCh)
	defer c.live.Remove(cl)
	ctx, cancel := context.WithCancel(c.base)
	defer cancel()
	started := c.now()
	cl.touch()
	cl.gov.Connected(ctx, "webrtc", map[string]any{"call": true})
	c.Metrics.liveAdd(1)
	defer c.Metrics.liveAdd(-1)
	cl.log.Info("call connected", "call_id", cl.upID)

	readDone := make(chan struct{}) // closed when the sideband's reader returns
	go func() {                     // owner: run, through ctx and the sideband's close
		defer close(readDone)
		if err := cl.read(ctx); err != nil && ctx.Err() == nil {
			cl.log.Debug("sideband closed", "call_id", cl.upID, "err", err)
		}
	}()

	e := cl.wait(readDone)
	if e.by != "upstream" {
		cl.settle(ctx)
		if err := c.hangupUpstream(context.WithoutCancel(ctx), cl.upID); err != nil {
			cl.log.Error("call hangup failed", "call_id", cl.upID, "err", err)
		}
	}
	_ = cl.side.Close(websocket.StatusNormalClosure, "")
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
		_ = cl.side.CloseNow()
		<-readDone
	}
	closeCtx, closeCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer closeCancel()
	cl.gov.Close(closeCtx)
	dur := c.now().Sub(started).Seconds()
	cl.gov.Disconnected(closeCtx, govern.Ending{By: e.by, Code: e.code, Seconds: dur})
	cl.release()
	t := cl.gov.Totals()
	cl.log.Info("call ended", "call_id", cl.upID, "by", e.by, "reason", e.code, "duration_seconds", dur,
		"responses", t.Responses, "cost_nanousd", t.CostNanoUSD)
}

// read hands every sideband event to the governor until the sideband
// closes.
func (cl *call) read(ctx context.Context) error {
	for {
		_, data, err := cl.side.Read(ctx)
		if err != nil {
			return err
		}
		et, _ := realtime.UpstreamEventType(data)
		switch et {
		case "input_audio_buffer.speech_started", "input_audio_buffer.committed":
			cl.touch()
		}
		cl.gov.Upstream(ctx, et, data)
	}
}

// wait returns why the call ends, enforcing the duration and idle limits.
func (cl *call) wait(readDone <-chan struct{}) ending {
	lim := cl.rec.Limits
	var expire, idle <-chan time.Time
	if lim.MaxSessionSeconds > 0 {
		left := time.Duration(float64(lim.MaxSessionSeconds)*float64(time.Second)) -
			time.Duration(cl.rec.LiveSeconds*float64(time.Second))
		t := time.NewTimer(max(left, 0))
		defer t.Stop()
		expire = t.C
	}
	idleAfter := time.Duration(lim.IdleTimeoutSeconds) * time.Second
	var idleTimer *time.Timer
	if idleAfter > 0 {
		idleTimer = time.NewTimer(idleAfter)
		defer idleTimer.Stop()
		idle = idleTimer.C
	}
	for {
		select {
		case e := <-cl.kill:
			return e
		case <-readDone:
			return ending{by: "upstream", code: "call_ended"}
		case <-expire:
			return ending{by: "gateway", code: govern.CodeSessionExpired}
		case <-idle:
			if q := cl.quiet(); q < idleAfter {
				idleTimer.Reset(idleAfter - q)
				continue
			}
			return ending{by: "gateway", code: govern.CodeIdleTimeout}
		}
	}
}

// settle cancels the call's running responses and waits, bounded, until
// everything upstream owes the session is metered.
func (cl *call) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cl.c.abandonWait())
	defer cancel()
	if !cl.gov.Abandon(ctx) {
		return
	}
	for {
		n, idle := cl.gov.Outstanding()
		if n == 0 {
			return
		}
		select {
		case <-idle:
		case <-ctx.Done():
			cl.log.Warn("call responses not settled in time", "outstanding", n)
			return
		}
	}
}
