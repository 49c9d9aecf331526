package relay

import (
	"context"
	"time"
)

// settleWait bounds how long a budget decision waits for the session's own
// finished responses to be settled. Settling is one store write, so the
// wait is normally a few milliseconds; the bound only matters when the
// store is failing, and then the decision goes ahead on what it knows.
const settleWait = 2 * time.Second

// ResponseFinishing implements SettleWatcher: the response's response.done
// was read upstream and is about to reach the client.
func (v *governor) ResponseFinishing(responseID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.finishing == nil {
		v.finishing = map[string]int{}
	}
	v.finishing[responseID]++
}

// ResponseSettled implements SettleWatcher: the metering of one
// response.done is over (ResponseDone ran, or the entry was a duplicate or
// could not be recorded). Waiters are woken.
func (v *governor) ResponseSettled(responseID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if n := v.finishing[responseID]; n > 1 {
		v.finishing[responseID] = n - 1
	} else {
		delete(v.finishing, responseID)
	}
	v.wakeSettled()
}

// wakeSettled wakes every awaitSettling; v.mu is held.
func (v *governor) wakeSettled() {
	if v.settled != nil {
		close(v.settled)
		v.settled = nil
	}
}

// awaitSettling waits, up to settleWait, until no response of this session
// is finished upstream but unsettled. A client that reacts to response.done
// at once (a new response.create, or audio that lets server VAD start the
// next turn) would otherwise be judged while the finished response still
// holds its reservation — refused for budget it has — and with an input
// estimate that misses the finished response's output.
func (v *governor) awaitSettling(ctx context.Context) {
	deadline := time.NewTimer(settleWait)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		if len(v.finishing) == 0 {
			v.mu.Unlock()
			return
		}
		if v.settled == nil {
			v.settled = make(chan struct{})
		}
		ch := v.settled
		v.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			v.g.logger().Warn("budget decision went ahead before a finished response was settled", "session_id", v.rec.ID)
			return
		case <-ctx.Done():
			return
		}
	}
}
