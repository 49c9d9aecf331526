package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// budgetGrace is how long an account outlives its window, so a settle that
// arrives just after the window closes still finds it.
const budgetGrace = 24 * time.Hour

// resAccount is one account as remembered by a reservation record, so that
// Settle, which only knows the reservation id, can name the keys it touches.
type resAccount struct {
	Key       string `json:"k"`
	ExpiresMS int64  `json:"e,omitempty"`
}

// Reserve grants the largest amount in [Min, Want] that fits every account,
// in one script, so concurrent reservations never jointly overspend.
// Remaining is math.MaxInt64 when no account has a limit. Reserving again
// with the id of a live reservation returns its original grant.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (store.ReserveResult, error) {
	if r.ID == "" {
		return store.ReserveResult{}, errors.New("redis: reserve: empty reservation id")
	}
	accounts := dedupeAccounts(r.Accounts)
	if len(accounts) == 0 {
		return store.ReserveResult{}, errors.New("redis: reserve: no accounts")
	}
	accts := make([]resAccount, len(accounts))
	keys := make([]string, 0, 2+2*len(accounts))
	keys = append(keys, s.k.reservation(r.ID), s.k.sessionHolds(r.Session))
	limits := make([]any, 0, 2*len(accounts))
	for i, a := range accounts {
		accts[i] = resAccount{Key: a.Key, ExpiresMS: s.accountExpiry(a.ExpiresAt)}
		keys = append(keys, s.k.budgetAccount(a.Key), s.k.budgetHolds(a.Key))
		limits = append(limits, max(a.LimitNano, 0), accts[i].ExpiresMS)
	}
	rec, err := json.Marshal(accts)
	if err != nil {
		return store.ReserveResult{}, fmt.Errorf("redis: reserve: %w", err)
	}
	args := append([]any{r.ID, max(r.Want, 0), max(r.Min, 0),
		leaseMS(s.reservationTTL), leaseMS(s.recordTTL()), string(rec), r.Session}, limits...)
	vals, err := budgetReserveScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return store.ReserveResult{}, unavailable("reserve", err)
	}
	res := store.ReserveResult{Granted: vals[0], Remaining: vals[1]}
	if res.Remaining < 0 {
		res.Remaining = math.MaxInt64
	}
	return res, nil
}

// Settle releases reservation id and charges actual to each of its
// accounts. An unknown, expired or already-settled id is a no-op.
func (s *Store) Settle(ctx context.Context, id string, actual int64) error {
	recKey := s.k.reservation(id)
	rec, err := s.c.HMGet(ctx, recKey, "accounts", "session").Result()
	if err != nil {
		return unavailable("settle", err)
	}
	raw, ok := rec[0].(string)
	if !ok {
		return nil // unknown, expired or settled
	}
	session, _ := rec[1].(string) // absent in records of older versions
	var accts []resAccount
	if err := json.Unmarshal([]byte(raw), &accts); err != nil {
		return fmt.Errorf("redis: settle %q: corrupt reservation record: %w", id, err)
	}
	keys := make([]string, 0, 2+2*len(accts))
	keys = append(keys, recKey, s.k.sessionHolds(session))
	args := []any{id, max(actual, 0), leaseMS(s.recordTTL())}
	for _, a := range accts {
		keys = append(keys, s.k.budgetAccount(a.Key), s.k.budgetHolds(a.Key))
		args = append(args, a.ExpiresMS)
	}
	if err := budgetSettleScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return unavailable("settle", err)
	}
	return nil
}

// Charge adds amount to the spend of every account, with no reservation.
func (s *Store) Charge(ctx context.Context, accounts []store.BudgetAccount, amount int64) error {
	accounts = dedupeAccounts(accounts)
	if len(accounts) == 0 || amount <= 0 {
		return nil
	}
	keys := make([]string, len(accounts))
	args := []any{amount, leaseMS(s.recordTTL())}
	for i, a := range accounts {
		keys[i] = s.k.budgetAccount(a.Key)
		args = append(args, s.accountExpiry(a.ExpiresAt))
	}
	if err := budgetChargeScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return unavailable("charge", err)
	}
	return nil
}

// Spent reports the spend and the live holds of an account.
func (s *Store) Spent(ctx context.Context, key string) (spent, reserved int64, err error) {
	vals, err := budgetSpentScript.Run(ctx, s.c, []string{s.k.budgetAccount(key), s.k.budgetHolds(key)}).Int64Slice()
	if err != nil {
		return 0, 0, unavailable("spent", err)
	}
	return vals[0], vals[1], nil
}

// SessionHolds lists the session's live reservations in the order they
// were granted; none for session "". It reads the session's list, then
// checks every listed reservation in one script on the server's clock,
// which also drops the ids of settled and lapsed ones from the list.
func (s *Store) SessionHolds(ctx context.Context, session string) ([]store.Hold, error) {
	if session == "" {
		return nil, nil
	}
	list := s.k.sessionHolds(session)
	ids, err := s.c.LRange(ctx, list, 0, -1).Result()
	if err != nil {
		return nil, unavailable("session holds", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 1+len(ids))
	keys = append(keys, list)
	args := make([]any, len(ids))
	for i, id := range ids {
		keys = append(keys, s.k.reservation(id))
		args[i] = id
	}
	vals, err := budgetSessionHoldsScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil {
		return nil, unavailable("session holds", err)
	}
	holds := make([]store.Hold, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		id := vals[i]
		amount, err := strconv.ParseInt(vals[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: session holds: corrupt reservation record %q: %w", id, err)
		}
		var accts []resAccount
		if err := json.Unmarshal([]byte(vals[i+2]), &accts); err != nil {
			return nil, fmt.Errorf("redis: session holds: corrupt reservation record %q: %w", id, err)
		}
		h := store.Hold{ID: id, Amount: amount, Accounts: make([]string, len(accts))}
		for j, a := range accts {
			h.Accounts[j] = a.Key
		}
		slices.Sort(h.Accounts)
		holds = append(holds, h)
	}
	return holds, nil
}

// recordTTL is how long a reservation record outlives its hold: a settle
// that arrives after the hold was released still charges the actual cost.
func (s *Store) recordTTL() time.Duration { return 2*s.reservationTTL + time.Hour }

// accountExpiry is the Unix ms at which an account's key may go, or 0 for
// an account without a window.
func (s *Store) accountExpiry(end time.Time) int64 {
	if end.IsZero() {
		return 0
	}
	return end.Add(budgetGrace).UnixMilli()
}

// dedupeAccounts merges accounts named twice, keeping the tighter limit
// and the later window end: holding or charging one account twice would
// count twice against it.
func dedupeAccounts(in []store.BudgetAccount) []store.BudgetAccount {
	out := make([]store.BudgetAccount, 0, len(in))
	seen := make(map[string]int, len(in))
	for _, a := range in {
		i, ok := seen[a.Key]
		if !ok {
			seen[a.Key] = len(out)
			out = append(out, a)
			continue
		}
		m := &out[i]
		if a.LimitNano > 0 && (m.LimitNano <= 0 || a.LimitNano < m.LimitNano) {
			m.LimitNano = a.LimitNano
		}
		if a.ExpiresAt.After(m.ExpiresAt) {
			m.ExpiresAt = a.ExpiresAt
		}
	}
	return out
}
