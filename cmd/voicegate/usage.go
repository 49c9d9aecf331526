package main

import (
	"context"
	"strconv"

	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/store"
)

// cmdUsage prints usage and cost from the ledger.
func cmdUsage(ctx context.Context, e env, args []string) error {
	fs, flags := newFlags(e, "usage")
	asJSON := fs.Bool("json", false, "print JSON")
	user := fs.String("user", "", "only this user")
	since := fs.String("since", "", "from this time (RFC 3339, YYYY-MM-DD or Unix seconds), inclusive")
	until := fs.String("until", "", "until this time, exclusive")
	groupBy := fs.String("group-by", "user", "group by user, model, day or session")
	if _, err := parseAll(fs, args); err != nil {
		return helpOK(err)
	}
	f := store.LedgerFilter{User: *user}
	var err error
	if f.Since, err = server.ParseTime("since", *since); err != nil {
		return err
	}
	if f.Until, err = server.ParseTime("until", *until); err != nil {
		return err
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
	t := newTable(e.stdout, *groupBy, "RESPONSES", "INPUT", "CACHED", "OUTPUT", "TOTAL", "COST")
	for _, r := range rows {
		t.row(r.Key, strconv.Itoa(r.Responses), strconv.FormatInt(r.Usage.InputTokens, 10),
			strconv.FormatInt(r.Usage.InputTokenDetails.CachedTokens, 10), strconv.FormatInt(r.Usage.OutputTokens, 10),
			strconv.FormatInt(r.Usage.TotalTokens, 10), usd(r.CostNanoUSD))
	}
	return t.flush()
}
