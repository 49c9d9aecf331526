package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/voicegate/voicegate/internal/store"
)

const ledgerColumns = `session_id, response_id, user, app_key_id, tier, model, status,
	total_tokens, input_tokens, output_tokens, input_text_tokens, input_audio_tokens, input_image_tokens,
	cached_tokens, cached_text_tokens, cached_audio_tokens, cached_image_tokens,
	output_text_tokens, output_audio_tokens, cost_nanousd, at, kind, audio_seconds`

const insertLedger = `INSERT INTO ledger (` + ledgerColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (session_id, response_id) DO NOTHING`

// RecordUsage stores e unless its (session, response) pair is present; the
// primary key makes that exact across processes.
func (s *Store) RecordUsage(ctx context.Context, e store.LedgerEntry) (bool, error) {
	u := e.Usage
	var added bool
	err := s.tx(ctx, "record usage", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, insertLedger,
			e.SessionID, e.ResponseID, e.User, e.AppKeyID, e.Tier, e.Model, e.Status,
			u.TotalTokens, u.InputTokens, u.OutputTokens, u.InputTextTokens, u.InputAudioTokens, u.InputImageTokens,
			u.CachedTokens, u.CachedTextTokens, u.CachedAudioTokens, u.CachedImageTokens,
			u.OutputTextTokens, u.OutputAudioTokens, e.CostNanoUSD, nanos(e.At), e.Kind, u.AudioSeconds)
		if err != nil {
			return unavailable("record usage", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return unavailable("record usage", err)
		}
		added = n == 1
		return nil
	})
	return added, err
}

// LedgerEntries returns the entries matching f, oldest first.
func (s *Store) LedgerEntries(ctx context.Context, f store.LedgerFilter) ([]store.LedgerEntry, error) {
	var w where
	w.text("session_id = ?", f.SessionID)
	w.text("user = ?", f.User)
	w.text("app_key_id = ?", f.AppKeyID)
	w.time("at >= ?", f.Since)
	w.time("at < ?", f.Until)
	q := `SELECT ` + ledgerColumns + ` FROM ledger` + w.clause() + ` ORDER BY at, session_id, response_id`
	return queryAll(ctx, s.db, "ledger entries", scanLedgerEntry, q, w.args...)
}

// scanLedgerEntry reads one row of ledgerColumns.
func scanLedgerEntry(row interface{ Scan(...any) error }) (store.LedgerEntry, error) {
	var e store.LedgerEntry
	var at int64
	u := &e.Usage
	if err := row.Scan(&e.SessionID, &e.ResponseID, &e.User, &e.AppKeyID, &e.Tier, &e.Model, &e.Status,
		&u.TotalTokens, &u.InputTokens, &u.OutputTokens, &u.InputTextTokens, &u.InputAudioTokens, &u.InputImageTokens,
		&u.CachedTokens, &u.CachedTextTokens, &u.CachedAudioTokens, &u.CachedImageTokens,
		&u.OutputTextTokens, &u.OutputAudioTokens, &e.CostNanoUSD, &at, &e.Kind, &u.AudioSeconds); err != nil {
		return e, err
	}
	e.At = fromNanos(at)
	return e, nil
}

// AppendAudit appends e; SQLite assigns the next sequence number
// (AUTOINCREMENT: never reused, increasing across processes). A zero At is
// set to the store's clock. e is bounded first (store.AuditEntry.Bounded).
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	e = e.Bounded()
	var detail []byte
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("sqlite: encode audit detail: %w", err)
		}
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	return s.tx(ctx, "append audit", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, insertAuditQuery,
			nanos(e.At), e.Kind, e.SessionID, e.User, e.AppKeyID, e.Tier, e.Instance, string(detail))
		if err != nil {
			return unavailable("append audit", err)
		}
		return nil
	})
}

// AuditEntries returns the entries matching f in sequence order (reversed
// when f.Newest).
func (s *Store) AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var w where
	w.add("seq > ?", f.AfterSeq)
	if f.BeforeSeq > 0 {
		w.add("seq < ?", f.BeforeSeq)
	}
	w.text("kind = ?", f.Kind)
	w.text("session_id = ?", f.SessionID)
	w.text("user = ?", f.User)
	w.text("app_key_id = ?", f.AppKeyID)
	w.time("at >= ?", f.Since)
	w.time("at < ?", f.Until)
	order := ""
	if f.Newest {
		order = " DESC"
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	return queryAll(ctx, s.db, "audit entries", scanAuditEntry, `SELECT seq, at, kind, session_id, user, app_key_id, tier, instance, detail
		FROM audit`+w.clause()+` ORDER BY seq`+order+` LIMIT ?`, append(w.args, limit)...)
}

// scanAuditEntry reads one audit row; an undecodable detail is a
// corruptRow.
func scanAuditEntry(row interface{ Scan(...any) error }) (store.AuditEntry, error) {
	var e store.AuditEntry
	var at int64
	var detail string
	if err := row.Scan(&e.Seq, &at, &e.Kind, &e.SessionID, &e.User, &e.AppKeyID, &e.Tier, &e.Instance, &detail); err != nil {
		return e, err
	}
	e.At = fromNanos(at)
	if detail != "" {
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return e, corruptRow{fmt.Errorf("sqlite: corrupt audit detail %d: %w", e.Seq, err)}
		}
	}
	return e, nil
}
