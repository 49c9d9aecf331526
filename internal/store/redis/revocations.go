package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/store"
)

// PublishRevocation publishes r on the revocation channel and appends it to
// a capped log. Each message carries the log's epoch (which changes when
// Redis loses its data) and a sequence number, so a subscriber that was
// reconnecting can catch up from the log without losing or repeating.
func (s *Store) PublishRevocation(ctx context.Context, r store.Revocation) error {
	if r.At.IsZero() {
		r.At = s.now()
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redis: publish revocation: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	err = revocationPublishScript.Run(ctx, s.c,
		[]string{s.k.revocationSeq(), s.k.revocationEpoch(), s.k.revocationLog()},
		s.k.revocationChannel(), raw, hex.EncodeToString(b[:]), s.revocationKeep).Err()
	if err != nil {
		return unavailable("publish revocation", err)
	}
	return nil
}

// SubscribeRevocations delivers every revocation published after it
// returns, until ctx is done; then the channel is closed. go-redis
// reconnects and resubscribes on its own when Redis goes away; on every
// resubscription the capped log is replayed from the last message seen, so
// revocations published during the gap still arrive.
func (s *Store) SubscribeRevocations(ctx context.Context) (<-chan store.Revocation, error) {
	// Where the log stands before subscribing: a catch-up after a reconnect
	// replays from here. Reading it after the subscription is confirmed
	// could skip a message published in between; reading it before may at
	// worst replay one published just before the call, which is harmless
	// (revocations are idempotent).
	cur := revCursor{}
	if last, err := s.c.LIndex(ctx, s.k.revocationLog(), 0).Result(); err == nil {
		if m, ok := parseRevocationMsg(last); ok {
			cur = revCursor{epoch: m.epoch, seq: m.seq}
		}
	} else if !errors.Is(err, goredis.Nil) {
		return nil, unavailable("subscribe revocations", err)
	}
	ps := s.c.Subscribe(ctx)
	if err := ps.Subscribe(ctx, s.k.revocationChannel()); err != nil {
		_ = ps.Close()
		return nil, unavailable("subscribe revocations", err)
	}
	// Wait for the confirmation: from then on nothing published is missed.
	if _, err := ps.ReceiveTimeout(ctx, 2*time.Second); err != nil {
		_ = ps.Close()
		return nil, unavailable("subscribe revocations", err)
	}

	in := ps.ChannelWithSubscriptions(
		goredis.WithChannelHealthCheckInterval(s.healthCheck),
		goredis.WithChannelSendTimeout(time.Minute),
	)
	out := make(chan store.Revocation, 64)
	// Owner: the caller's ctx. Closing ps ends go-redis's reader, which
	// closes in; then the delivery goroutine closes out.
	go func() {
		<-ctx.Done()
		_ = ps.Close()
	}()
	go func() {
		defer close(out)
		for m := range in {
			var batch []revocationMsg
			switch m := m.(type) {
			case *goredis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				batch = s.revocationsSince(ctx, cur)
			case *goredis.Message:
				rm, ok := parseRevocationMsg(m.Payload)
				if !ok {
					s.log.Warn("redis: malformed revocation message ignored")
					continue
				}
				batch = []revocationMsg{rm}
			}
			for _, rm := range batch {
				if !cur.advance(rm) {
					continue
				}
				select {
				case out <- rm.rev:
				case <-ctx.Done():
					// Drain in so go-redis's reader is not stuck sending.
					for range in {
					}
					return
				}
			}
		}
	}()
	return out, nil
}

// revCursor is the last revocation a subscriber delivered.
type revCursor struct {
	epoch string
	seq   int64
}

// advance reports whether m is new to the cursor and moves it. A message
// of another epoch is new: Redis lost its data and the sequence restarted.
func (c *revCursor) advance(m revocationMsg) bool {
	if m.epoch == c.epoch && m.seq <= c.seq {
		return false
	}
	c.epoch, c.seq = m.epoch, m.seq
	return true
}

// revocationsSince reads the capped log for messages after cur, oldest
// first. Errors are logged: the live channel keeps working.
func (s *Store) revocationsSince(ctx context.Context, cur revCursor) []revocationMsg {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raws, err := s.c.LRange(ctx, s.k.revocationLog(), 0, -1).Result()
	if err != nil {
		s.log.Warn("redis: revocation catch-up failed", "err", err)
		return nil
	}
	var out []revocationMsg
	for _, raw := range raws { // newest first
		m, ok := parseRevocationMsg(raw)
		if !ok {
			continue
		}
		if m.epoch == cur.epoch && m.seq <= cur.seq {
			break
		}
		out = append(out, m)
	}
	slices.Reverse(out)
	return out
}

type revocationMsg struct {
	epoch string
	seq   int64
	rev   store.Revocation
}

// parseRevocationMsg reads "epoch:seq:json".
func parseRevocationMsg(s string) (revocationMsg, bool) {
	epoch, rest, ok := strings.Cut(s, ":")
	if !ok {
		return revocationMsg{}, false
	}
	seqStr, raw, ok := strings.Cut(rest, ":")
	if !ok {
		return revocationMsg{}, false
	}
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if err != nil {
		return revocationMsg{}, false
	}
	m := revocationMsg{epoch: epoch, seq: seq}
	if err := json.Unmarshal([]byte(raw), &m.rev); err != nil {
		return revocationMsg{}, false
	}
	return m, true
}
