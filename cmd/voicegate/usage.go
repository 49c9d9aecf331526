package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/store"
)

// cmdUsage prints usage and cost from the ledger.
func cmdUsage(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage: "voicegate usage [--user U] [--since T] [--until T] [--group-by user|model|day|session] [--json] [--store S]",
		about: "Usage and cost from the ledger (every response and transcription upstream billed), grouped\n" +
			"by user, model, UTC day (newest first) or session. Times: RFC 3339, YYYY-MM-DD or Unix seconds.",
		example: "voicegate usage --group-by day\nvoicegate usage --user alice --since 2026-01-01 --group-by model --json",
	})
	asJSON := fs.Bool("json", false, "print JSON")
	user := fs.String("user", "", "only this user")
	since := fs.String("since", "", "from this time, inclusive")
	until := fs.String("until", "", "until this time, exclusive")
	groupBy := fs.String("group-by", "user", "group by "+strings.Join(server.GroupBy, ", "))
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("usage: unexpected argument %q", pos[0])
	}
	f := store.LedgerFilter{User: *user}
	if f.Since, err = parseTime("since", *since); err != nil {
		return err
	}
	if f.Until, err = parseTime("until", *until); err != nil {
		return err
	}
	if _, err := server.SummarizeUsage(nil, *groupBy); err != nil {
		return fmt.Errorf("--group-by: %q is not one of %s", *groupBy, strings.Join(server.GroupBy, ", "))
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	entries, err := st.LedgerEntries(ctx, f)
	if err != nil {
		return err
	}
	rows, err := server.SummarizeUsage(entries, *groupBy)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, rows)
	}
	t := newTable(e.stdout, strings.ToUpper(*groupBy), "RESPONSES", "INPUT", "CACHED", "OUTPUT", "TOTAL", "COST")
	for _, r := range rows {
		t.row(r.Key, strconv.Itoa(r.Responses), strconv.FormatInt(r.Usage.InputTokens, 10),
			strconv.FormatInt(r.Usage.InputTokenDetails.CachedTokens, 10), strconv.FormatInt(r.Usage.OutputTokens, 10),
			strconv.FormatInt(r.Usage.TotalTokens, 10), usd(r.CostNanoUSD))
	}
	return t.flush()
}
