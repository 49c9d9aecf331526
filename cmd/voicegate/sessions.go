package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/store"
)

var sessionsVerbs = []verb{
	{"list", "list sessions, newest first"},
	{"show", "one session with its usage, cost and limits"},
	{"revoke", "revoke a session and close it within a second"},
}

// cmdSessions shows and revokes sessions directly in the store.
func cmdSessions(ctx context.Context, e env, args []string) error {
	v, args, err := subcommand(e, "sessions", args, sessionsVerbs)
	if err != nil {
		return helpOK(err)
	}
	switch v {
	case "list":
		return sessionsList(ctx, e, args)
	}
	return sessionsOne(ctx, e, v, args)
}

func sessionsList(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage: "voicegate sessions list [--user U] [--state S] [--since T] [--before T] [--limit N] [--json] [--store S]",
		about: "List sessions, newest first, with their usage and cost. States: " + server.StatesHelp + ".\n" +
			"Page with --before the CREATED time of the last row (--json shows it to the nanosecond).",
		example: "voicegate sessions list\nvoicegate sessions list --user alice --state live --json",
	})
	asJSON := fs.Bool("json", false, "print JSON")
	user := fs.String("user", "", "only sessions of this user")
	state := fs.String("state", "", "only sessions in this state: "+server.StatesHelp)
	since := fs.String("since", "", "only sessions created at or after this time (RFC 3339, YYYY-MM-DD or Unix seconds)")
	before := fs.String("before", "", "only sessions created before this time: the next page")
	limit := fs.Int("limit", 50, "at most this many sessions (1–1000)")
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("sessions list: unexpected argument %q", pos[0])
	}
	f := store.SessionFilter{User: *user, State: *state, Limit: *limit}
	if *state != "" && !slices.Contains(server.States, *state) {
		return fmt.Errorf("--state: %q is not one of %s", *state, server.StatesHelp)
	}
	if err := checkLimit(*limit, 1000); err != nil {
		return err
	}
	if f.Since, err = parseTime("since", *since); err != nil {
		return err
	}
	if f.Before, err = parseTime("before", *before); err != nil {
		return err
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ListSessions(ctx, f)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]*server.SessionView, 0, len(list))
	for _, s := range list {
		v, err := server.ViewSession(ctx, st, s, nil, now)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	if *asJSON {
		return printJSON(e.stdout, views)
	}
	t := newTable(e.stdout, "ID", "USER", "TIER", "MODEL", "STATE", "CREATED", "LIVE_S", "RESPONSES", "TOKENS", "COST")
	for _, v := range views {
		t.row(v.ID, v.User, v.Tier, v.Model, v.State, stamp(v.CreatedAt), seconds(v.LiveSeconds),
			strconv.Itoa(v.Responses), strconv.FormatInt(v.Usage.TotalTokens, 10), usd(v.CostNanoUSD))
	}
	return t.flush()
}

func sessionsOne(ctx context.Context, e env, verb string, args []string) error {
	h := help{
		usage:   "voicegate sessions show SESSION_ID [--json] [--store S]",
		about:   "Show one session: who, which tier and model, its state (" + server.StatesHelp + "),\nlive seconds (counting while live), usage in OpenAI's field names, cost and limits.",
		example: "voicegate sessions show vgs_6dd3…\nvoicegate sessions show vgs_6dd3… --json",
	}
	if verb == "revoke" {
		h = help{
			usage:   "voicegate sessions revoke SESSION_ID [--json] [--store S]",
			about:   "Revoke a session: its token stops working and its live connection, on whichever instance\nholds it, is closed within a second with 1008 and an error event session_revoked.",
			example: "voicegate sessions revoke vgs_6dd3…",
		}
	}
	fs, flags := storeFlags(e, h)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("sessions %s: want exactly one session id", verb)
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.Session(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("sessions %s %s: %w", verb, pos[0], err)
	}
	if verb == "revoke" {
		now := time.Now().UTC()
		if s, err = server.RevokeSession(ctx, st, s.ID, now); err != nil {
			return err
		}
		_ = st.AppendAudit(ctx, store.AuditEntry{At: now, Kind: "revoke", SessionID: s.ID, User: s.User, AppKeyID: s.AppKeyID, Tier: s.Tier,
			Detail: map[string]any{"scope": "session", "by": "cli"}})
		if err := st.PublishRevocation(ctx, store.Revocation{Kind: "session", ID: s.ID, At: now}); err != nil {
			return err
		}
	}
	v, err := server.ViewSession(ctx, st, s, nil, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	if verb == "revoke" {
		fmt.Fprintf(e.stdout, "revoked session %s\n", s.ID)
		return nil
	}
	t := newTable(e.stdout, "FIELD", "VALUE")
	t.row("id", v.ID)
	t.row("user", v.User)
	t.row("tier", v.Tier)
	t.row("app_key_id", v.AppKeyID)
	t.row("model", v.Model)
	t.row("state", v.State)
	t.row("transport", v.Transport)
	t.row("created_at", stamp(v.CreatedAt))
	t.row("expires_at", stamp(v.ExpiresAt))
	t.row("started_at", stamp(v.StartedAt))
	t.row("ended_at", stamp(v.EndedAt))
	t.row("end_reason", v.EndReason)
	t.row("live_seconds", seconds(v.LiveSeconds))
	t.row("responses", strconv.Itoa(v.Responses))
	if v.Transcriptions > 0 {
		t.row("transcriptions", strconv.Itoa(v.Transcriptions))
	}
	t.row("input_tokens", strconv.FormatInt(v.Usage.InputTokens, 10))
	t.row("output_tokens", strconv.FormatInt(v.Usage.OutputTokens, 10))
	t.row("total_tokens", strconv.FormatInt(v.Usage.TotalTokens, 10))
	t.row("cost", usd(v.CostNanoUSD))
	lim := v.Limits
	t.row("max_session_seconds", limitInt(int64(lim.MaxSessionSeconds)))
	t.row("idle_timeout_seconds", limitInt(int64(lim.IdleTimeoutSeconds)))
	t.row("budget", limitUSD(lim.BudgetNanoUSD))
	t.row("max_concurrent", limitInt(int64(lim.MaxConcurrent)))
	return t.flush()
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }

// limitInt and limitUSD print a limit, "none" for 0.
func limitInt(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

func limitUSD(nano int64) string {
	if nano == 0 {
		return "none"
	}
	return usd(nano)
}
