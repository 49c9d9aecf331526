package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/store"
)

// cmdAudit prints the audit trail, newest first.
func cmdAudit(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage: "voicegate audit [--kind K] [--session ID] [--user U] [--since T] [--until T] [--before SEQ] [--limit N] [--json] [--store S]",
		about: "The audit trail, newest first: mints, connects and disconnects, refusals, revocations,\n" +
			"key changes. Page with --before the SEQ of the last row. Times: RFC 3339, YYYY-MM-DD or Unix seconds.",
		example: "voicegate audit --limit 20\nvoicegate audit --session vgs_6dd3… --json\nvoicegate audit --kind revoke --since 2026-01-01",
	})
	asJSON := fs.Bool("json", false, "print JSON")
	kind := fs.String("kind", "", "only entries of this kind (mint, connect, disconnect, revoke, auth_refused, …)")
	session := fs.String("session", "", "only entries of this session id")
	user := fs.String("user", "", "only entries of this user")
	since := fs.String("since", "", "from this time, inclusive")
	until := fs.String("until", "", "until this time, exclusive")
	before := fs.Int64("before", 0, "only entries with a SEQ below this: the next page")
	limit := fs.Int("limit", 50, "at most this many entries (1–10000)")
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("audit: unexpected argument %q", pos[0])
	}
	if err := checkLimit(*limit, 10000); err != nil {
		return err
	}
	if *before < 0 {
		return fmt.Errorf("--before: %d is not a SEQ", *before)
	}
	f := store.AuditFilter{Kind: *kind, SessionID: *session, User: *user, BeforeSeq: *before, Newest: true, Limit: *limit}
	if f.Since, err = parseTime("since", *since); err != nil {
		return err
	}
	if f.Until, err = parseTime("until", *until); err != nil {
		return err
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	entries, err := st.AuditEntries(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []store.AuditEntry{}
		}
		return printJSON(e.stdout, entries)
	}
	t := newTable(e.stdout, "SEQ", "AT", "KIND", "SESSION", "USER", "APP_KEY", "TIER", "DETAIL")
	for _, a := range entries {
		t.row(strconv.FormatInt(a.Seq, 10), stamp(a.At), a.Kind, a.SessionID, a.User, a.AppKeyID, a.Tier, detail(a.Detail))
	}
	return t.flush()
}

// detail prints an audit entry's detail on one line, keys sorted.
func detail(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v, err := json.Marshal(d[k])
		if err != nil {
			v = []byte("?")
		}
		parts = append(parts, k+"="+strings.Trim(string(v), `"`))
	}
	return strings.Join(parts, " ")
}
