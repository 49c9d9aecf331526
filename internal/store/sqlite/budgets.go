package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

// reservationGrace is how long an expired reservation is kept before it is
// deleted: Settle still charges it (the money was spent) but it no longer
// holds anything.
const reservationGrace = time.Hour

// Reserve grants the largest amount in [Min, Want] that fits every limited
// account, in one BEGIN IMMEDIATE transaction. Reserving an id that is
// already held answers the first grant. Remaining is math.MaxInt64 when no
// account has a limit.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (store.ReserveResult, error) {
	var res store.ReserveResult
	err := s.tx(ctx, "reserve", func(ctx context.Context, tx *sql.Tx) error {
		now := s.now().UnixNano()
		if _, err := s.exec(ctx, tx, `DELETE FROM reservations WHERE expires_at <= ?`, now-int64(reservationGrace)); err != nil {
			return unavailable("reserve", err)
		}
		avail, limited := int64(math.MaxInt64), false
		var keys []string
		for _, a := range r.Accounts {
			if _, err := s.exec(ctx, tx, `INSERT INTO budget_accounts (key, expires_at) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`, a.Key, nanos(a.ExpiresAt)); err != nil {
				return unavailable("reserve", err)
			}
			if !slices.Contains(keys, a.Key) {
				keys = append(keys, a.Key)
			}
			if a.LimitNano <= 0 {
				continue
			}
			spent, reserved, err := accountTotals(ctx, txQuerier{s, tx}, a.Key, now)
			if err != nil {
				return err
			}
			limited = true
			avail = min(avail, a.LimitNano-spent-reserved)
		}
		remaining := func(v int64) int64 {
			if !limited {
				return math.MaxInt64
			}
			return max(v, 0)
		}
		var prev int64
		err := s.queryRow(ctx, tx, `SELECT amount FROM reservations WHERE id = ? AND expires_at > ?`, r.ID, now).Scan(&prev)
		if err == nil {
			res = store.ReserveResult{Granted: prev, Remaining: remaining(avail)}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return unavailable("reserve", err)
		}
		g := min(r.Want, avail)
		if g <= 0 || g < r.Min {
			res = store.ReserveResult{Remaining: remaining(avail)}
			return nil
		}
		// Replace a lapsed reservation of the same id, if any.
		if _, err := s.exec(ctx, tx, `DELETE FROM reservations WHERE id = ?`, r.ID); err != nil {
			return unavailable("reserve", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO reservations (id, amount, expires_at, session, granted_at) VALUES (?, ?, ?, ?, ?)`,
			r.ID, g, now+int64(s.reservationTTL), r.Session, now); err != nil {
			return unavailable("reserve", err)
		}
		for _, k := range keys {
			if _, err := s.exec(ctx, tx, `INSERT INTO reservation_holds (reservation_id, account_key) VALUES (?, ?)`, r.ID, k); err != nil {
				return unavailable("reserve", err)
			}
		}
		res = store.ReserveResult{Granted: g, Remaining: remaining(avail - g)}
		return nil
	})
	return res, err
}

// accountTotals reads an account's spend and its live holds.
func accountTotals(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, key string, now int64) (spent, reserved int64, err error) {
	err = q.QueryRowContext(ctx, accountTotalsQuery, key, now).Scan(&spent, &reserved)
	if err != nil {
		return 0, 0, unavailable("budget totals", err)
	}
	return spent, reserved, nil
}

// accountTotalsQuery reads an account's spend and live holds.
const accountTotalsQuery = `SELECT
		COALESCE((SELECT spent FROM budget_accounts WHERE key = ?1), 0),
		COALESCE((SELECT SUM(r.amount) FROM reservation_holds h JOIN reservations r ON r.id = h.reservation_id
			WHERE h.account_key = ?1 AND r.expires_at > ?2), 0)`

// txQuerier runs a writer transaction's queries through the statement
// cache.
type txQuerier struct {
	s  *Store
	tx *sql.Tx
}

func (q txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.s.queryRow(ctx, q.tx, query, args...)
}

// Settle releases reservation id and charges actual to each of its accounts;
// an unknown or settled id is a no-op.
func (s *Store) Settle(ctx context.Context, id string, actual int64) error {
	return s.tx(ctx, "settle", func(ctx context.Context, tx *sql.Tx) error {
		if actual != 0 {
			if _, err := s.exec(ctx, tx, `UPDATE budget_accounts SET spent = spent + ?
				WHERE key IN (SELECT account_key FROM reservation_holds WHERE reservation_id = ?)`, actual, id); err != nil {
				return unavailable("settle", err)
			}
		}
		// Deleting the reservation cascades to its holds.
		if _, err := s.exec(ctx, tx, `DELETE FROM reservations WHERE id = ?`, id); err != nil {
			return unavailable("settle", err)
		}
		return nil
	})
}

// Charge adds amount to every account's spend.
func (s *Store) Charge(ctx context.Context, accounts []store.BudgetAccount, amount int64) error {
	return s.tx(ctx, "charge", func(ctx context.Context, tx *sql.Tx) error {
		seen := make(map[string]bool, len(accounts))
		for _, a := range accounts {
			if seen[a.Key] {
				continue
			}
			seen[a.Key] = true
			if _, err := s.exec(ctx, tx, `INSERT INTO budget_accounts (key, spent, expires_at) VALUES (?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET spent = spent + excluded.spent,
					expires_at = MAX(expires_at, excluded.expires_at)`, a.Key, amount, nanos(a.ExpiresAt)); err != nil {
				return unavailable("charge", err)
			}
		}
		return nil
	})
}

// Spent reports the account's spend and live holds (zeros when unknown).
func (s *Store) Spent(ctx context.Context, key string) (spent, reserved int64, err error) {
	return accountTotals(ctx, dbQuerier{s}, key, s.now().UnixNano())
}

// SessionHolds lists the session's live reservations in the order they
// were granted (rowid breaks ties of a shared clock); none for session "".
func (s *Store) SessionHolds(ctx context.Context, session string) ([]store.Hold, error) {
	if session == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.amount, h.account_key
		FROM reservations r LEFT JOIN reservation_holds h ON h.reservation_id = r.id
		WHERE r.session = ? AND r.expires_at > ?
		ORDER BY r.granted_at, r.rowid, h.account_key`, session, s.now().UnixNano())
	if err != nil {
		return nil, unavailable("session holds", err)
	}
	defer rows.Close()
	var out []store.Hold
	for rows.Next() {
		var id string
		var key sql.NullString // NULL for a reservation without accounts
		var amount int64
		if err := rows.Scan(&id, &amount, &key); err != nil {
			return nil, unavailable("session holds", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != id {
			out = append(out, store.Hold{ID: id, Amount: amount})
		}
		if key.Valid {
			h := &out[len(out)-1]
			h.Accounts = append(h.Accounts, key.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("session holds", err)
	}
	return out, nil
}
