package spool

import (
	"context"
	"fmt"

	"github.com/voicegate/voicegate/internal/store"
)

// op kinds as written to the spool file.
const (
	kindRecordUsage = "record_usage"
	kindCharge      = "charge"
	kindSettle      = "settle"
	kindAudit       = "audit"
)

// op is one spooled operation, one JSON line in the spool file.
type op struct {
	Kind     string                `json:"op"`
	Entry    *store.LedgerEntry    `json:"entry,omitempty"`
	Accounts []store.BudgetAccount `json:"accounts,omitempty"`
	Amount   int64                 `json:"amount,omitempty"`
	ID       string                `json:"id,omitempty"`
	Audit    *store.AuditEntry     `json:"audit,omitempty"`
}

// ledgerKey identifies a ledger entry for duplicate detection.
func ledgerKey(e *store.LedgerEntry) string { return e.SessionID + "\x00" + e.ResponseID }

// apply runs o against the inner store.
func (o *op) apply(ctx context.Context, inner store.Store) error {
	switch o.Kind {
	case kindRecordUsage:
		if o.Entry == nil {
			return fmt.Errorf("spool: record_usage without entry")
		}
		_, err := inner.RecordUsage(ctx, *o.Entry)
		return err
	case kindCharge:
		return inner.Charge(ctx, o.Accounts, o.Amount)
	case kindSettle:
		return inner.Settle(ctx, o.ID, o.Amount)
	case kindAudit:
		if o.Audit == nil {
			return fmt.Errorf("spool: audit without entry")
		}
		return inner.AppendAudit(ctx, *o.Audit)
	default:
		return fmt.Errorf("spool: unknown op %q", o.Kind)
	}
}
