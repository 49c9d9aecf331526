package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/store"
)

// storeFlags returns the flag set of a command that reads the store: its
// own flags plus --store and --config.
func storeFlags(e env, h help) (*flagSet, *config.Flags) {
	fs := cmdFlags(e, h)
	return fs, config.BindStore(fs.FlagSet)
}

var keysVerbs = []verb{
	{"create", "create an app key (printed once)"},
	{"list", "list app keys, newest first"},
	{"revoke", "revoke an app key and close its sessions"},
}

// cmdKeys manages app keys directly in the store.
func cmdKeys(ctx context.Context, e env, args []string) error {
	v, args, err := subcommand(e, "keys", args, keysVerbs)
	if err != nil {
		return helpOK(err)
	}
	switch v {
	case "create":
		return keysCreate(ctx, e, args)
	case "list":
		return keysList(ctx, e, args)
	}
	return keysRevoke(ctx, e, args)
}

func keysCreate(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage:   "voicegate keys create --name NAME [--tier T1,T2] [--json] [--store S]",
		about:   "Create an app key (vgk_…) for your backend to mint session tokens with. The key is\nprinted once; the store keeps only its hash.",
		example: "voicegate keys create --name web\nvoicegate keys create --name mobile --tier pro,default --json",
	})
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "key name (required)")
	tiers := fs.String("tier", "", "comma-separated tiers the key may mint for (default: default)")
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("keys create: unexpected argument %q", pos[0])
	}
	if strings.TrimSpace(*name) == "" {
		return fmt.Errorf("keys create: --name is required")
	}
	cfg, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	var ts []string
	for _, t := range strings.Split(*tiers, ",") {
		if t = strings.TrimSpace(t); t != "" {
			if _, ok := cfg.Tiers[t]; !ok {
				return fmt.Errorf("keys create: unknown tier %q", t)
			}
			ts = append(ts, t)
		}
	}
	tok, k, err := auth.CreateKey(ctx, st, nil, time.Now(), strings.TrimSpace(*name), ts)
	if err != nil {
		return err
	}
	if err := st.AppendAudit(ctx, store.AuditEntry{At: time.Now().UTC(), Kind: "key_create", AppKeyID: k.ID,
		Detail: map[string]any{"name": k.Name, "tiers": k.Tiers, "by": "cli"}}); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, map[string]any{"id": k.ID, "name": k.Name, "tiers": k.Tiers, "hint": k.Hint,
			"created_at": k.CreatedAt.UTC(), "value": tok.Reveal()})
	}
	fmt.Fprintf(e.stdout, "created app key %s (%s)\n%s\nStore it now: it is shown only once.\n", k.ID, k.Name, tok.Reveal())
	return nil
}

func keysList(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage:   "voicegate keys list [--limit N] [--before TIME] [--json] [--store S]",
		about:   "List app keys, newest first. Page with --before the CREATED time of the last row.",
		example: "voicegate keys list\nvoicegate keys list --limit 20 --before 2026-01-31T12:00:00Z --json",
	})
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 50, "at most this many keys (1–1000)")
	before := fs.String("before", "", "only keys created before this time (RFC 3339, YYYY-MM-DD or Unix seconds): the next page")
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("keys list: unexpected argument %q", pos[0])
	}
	if err := checkLimit(*limit, 1000); err != nil {
		return err
	}
	until, err := parseTime("before", *before)
	if err != nil {
		return err
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	all, err := st.ListKeys(ctx)
	if err != nil {
		return err
	}
	keys := newestKeys(all, until, *limit)
	if *asJSON {
		return printJSON(e.stdout, keys)
	}
	t := newTable(e.stdout, "ID", "NAME", "HINT", "TIERS", "CREATED", "REVOKED")
	for _, k := range keys {
		t.row(k.ID, k.Name, k.Hint, strings.Join(k.Tiers, ","), stamp(k.CreatedAt), stamp(k.RevokedAt))
	}
	return t.flush()
}

// newestKeys orders keys newest first and keeps at most limit created
// before until (when set).
func newestKeys(all []*store.AppKey, until time.Time, limit int) []*store.AppKey {
	keys := make([]*store.AppKey, 0, len(all))
	for _, k := range all {
		if until.IsZero() || k.CreatedAt.Before(until) {
			keys = append(keys, k)
		}
	}
	slices.SortStableFunc(keys, func(a, b *store.AppKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return keys[:min(limit, len(keys))]
}

func keysRevoke(ctx context.Context, e env, args []string) error {
	fs, flags := storeFlags(e, help{
		usage:   "voicegate keys revoke KEY_ID [--store S]",
		about:   "Revoke an app key: it can no longer mint, and every live session it minted is closed\n(on every instance sharing the store) within a second.",
		example: "voicegate keys revoke key_3f9a…",
	})
	pos, err := fs.parseAll(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("keys revoke: want exactly one key id")
	}
	_, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC()
	if err := st.RevokeKey(ctx, pos[0], now); err != nil {
		return fmt.Errorf("keys revoke %s: %w", pos[0], err)
	}
	_ = st.AppendAudit(ctx, store.AuditEntry{At: now, Kind: "revoke", AppKeyID: pos[0], Detail: map[string]any{"scope": "app_key", "by": "cli"}})
	if err := st.PublishRevocation(ctx, store.Revocation{Kind: "app_key", ID: pos[0], At: now}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked app key %s\n", pos[0])
	return nil
}

// checkLimit refuses a --limit outside 1–max.
func checkLimit(n, max int) error {
	if n < 1 || n > max {
		return fmt.Errorf("--limit: %d is outside 1–%d", n, max)
	}
	return nil
}
