package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/store"
)

// cmdSessions shows and revokes sessions directly in the store.
func cmdSessions(ctx context.Context, e env, args []string) error {
	verb, args, err := subcommand(e, "sessions", args, "list|show ID|revoke ID")
	if err != nil {
		return err
	}
	fs, flags := newFlags(e, "sessions "+verb)
	asJSON := fs.Bool("json", false, "print JSON")
	user := fs.String("user", "", "only sessions of this user (list)")
	state := fs.String("state", "", "only sessions in this state: minted, live, idle, ended, revoked (list)")
	limit := fs.Int("limit", 50, "at most this many sessions (list)")
	pos, err := parseAll(fs, args)
	if err != nil {
		return helpOK(err)
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "list":
		list, err := st.ListSessions(ctx, store.SessionFilter{User: *user, State: *state, Limit: *limit})
		if err != nil {
			return err
		}
		views := make([]*server.SessionView, 0, len(list))
		for _, s := range list {
			v, err := server.ViewSession(ctx, st, s, nil)
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		if *asJSON {
			return printJSON(e.stdout, views)
		}
		t := newTable(e.stdout, "ID", "USER", "TIER", "MODEL", "STATE", "CREATED", "RESPONSES", "TOKENS", "COST")
		for _, v := range views {
			t.row(v.ID, v.User, v.Tier, v.Model, v.State, v.CreatedAt.UTC().Format(time.RFC3339),
				strconv.Itoa(v.Responses), strconv.FormatInt(v.Usage.TotalTokens, 10), usd(v.CostNanoUSD))
		}
		return t.flush()
	case "show", "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("sessions %s: want exactly one session id", verb)
		}
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
		v, err := server.ViewSession(ctx, st, s, nil)
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
		t.row("created_at", v.CreatedAt.UTC().Format(time.RFC3339))
		t.row("expires_at", v.ExpiresAt.UTC().Format(time.RFC3339))
		t.row("live_seconds", strconv.FormatFloat(v.LiveSeconds, 'f', 1, 64))
		t.row("responses", strconv.Itoa(v.Responses))
		t.row("input_tokens", strconv.FormatInt(v.Usage.InputTokens, 10))
		t.row("output_tokens", strconv.FormatInt(v.Usage.OutputTokens, 10))
		t.row("total_tokens", strconv.FormatInt(v.Usage.TotalTokens, 10))
		t.row("cost", usd(v.CostNanoUSD))
		t.row("limits", fmt.Sprint(v.LimitsView))
		return t.flush()
	}
	fmt.Fprintf(e.stderr, "voicegate sessions: unknown subcommand %q\n", verb)
	return errUsage
}
