package govern

import (
	"context"
	"errors"
	"fmt"

	"github.com/voicegate/voicegate/internal/store"
)

// Ending is how a connection of a session ended, for its record.
type Ending struct {
	// By is who ended it: "client", "upstream" or "gateway".
	By string
	// Code is the gateway's ending code (see EndingState) or the close
	// reason the other side gave.
	Code string
	// CloseCode is the transport's close code (WebSocket), 0 for none.
	CloseCode int
	// Seconds is how long the connection was live.
	Seconds float64
}

// EndingState is the one table of the gateway's endings: the state the
// session record keeps after the gateway ended a connection with code. A
// session left "idle" may connect again until its token expires.
func EndingState(code string) string {
	switch code {
	case CodeSessionRevoked:
		return store.StateRevoked
	case CodeSessionExpired, CodeBudgetExceeded:
		return store.StateEnded
	}
	return store.StateIdle
}

// Connected records a connection of the session as live on transport
// ("websocket", "webrtc") and audits it with detail.
func (s *Session) Connected(ctx context.Context, transport string, detail map[string]any) {
	now := s.g.now()
	err := s.updateRecord(ctx, func(rec *store.Session) error {
		rec.State = store.StateLive
		rec.Transport = transport
		if rec.StartedAt.IsZero() {
			rec.StartedAt = now
		}
		return nil
	})
	if err != nil {
		s.g.logger().Error("session state update failed", "session_id", s.rec.ID, "err", err)
	}
	d := map[string]any{"transport": transport, "model": s.rec.Model}
	for k, v := range detail {
		d[k] = v
	}
	s.g.audit(ctx, s.rec, "connect", d)
}

// Disconnected records the end of the connection: its live seconds, the
// state the ending leaves (an expired token ends the session), and an
// audit record with what it was metered.
func (s *Session) Disconnected(ctx context.Context, e Ending) {
	end := s.g.now()
	err := s.updateRecord(ctx, func(rec *store.Session) error {
		rec.LiveSeconds += e.Seconds
		if rec.State == store.StateRevoked || rec.State == store.StateEnded {
			return nil // decided elsewhere (revocation): keep it
		}
		state := store.StateIdle
		if e.By == "gateway" {
			state = EndingState(e.Code)
		}
		if state == store.StateIdle && !rec.ExpiresAt.IsZero() && !end.Before(rec.ExpiresAt) {
			state = store.StateEnded
		}
		rec.State = state
		switch state {
		case store.StateRevoked:
			if rec.RevokedAt.IsZero() {
				rec.RevokedAt = end
			}
			rec.EndedAt, rec.EndReason = end, e.Code
		case store.StateEnded:
			rec.EndedAt, rec.EndReason = end, e.Code
			if e.By != "gateway" || rec.EndReason == "" {
				rec.EndReason = "token_expired"
			}
		}
		return nil
	})
	if err != nil {
		s.g.logger().Error("session state update failed", "session_id", s.rec.ID, "err", err)
	}
	t := s.Totals()
	s.g.audit(ctx, s.rec, "disconnect", map[string]any{
		"by": e.By, "close_code": e.CloseCode, "reason": e.Code,
		"duration_seconds": e.Seconds, "responses": t.Responses, "usage": t.Usage, "cost_nanousd": t.CostNanoUSD,
	})
}

// updateRecord applies fn to the stored session record. When the store no
// longer has it (Redis restarted with an empty dataset while the session
// was live), the record is created again from the copy this connection
// holds, with fn applied, so the session stays listable, revocable and
// reconnectable; that is logged once per re-creation.
func (s *Session) updateRecord(ctx context.Context, fn func(*store.Session) error) error {
	st := s.g.Store
	_, err := st.UpdateSession(ctx, s.rec.ID, fn)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rec := *s.rec
	if err := fn(&rec); err != nil {
		return err
	}
	err = st.CreateSession(ctx, &rec)
	if errors.Is(err, store.ErrConflict) {
		// Re-created meanwhile (by another instance's connection).
		_, err = st.UpdateSession(ctx, s.rec.ID, fn)
		return err
	}
	if err != nil {
		return fmt.Errorf("govern: re-create missing session record: %w", err)
	}
	s.g.logger().Warn("session record missing from the store: re-created from the live connection", "session_id", s.rec.ID, "state", rec.State)
	return nil
}
