package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/store"
)

// cmdKeys manages app keys directly in the store.
func cmdKeys(ctx context.Context, e env, args []string) error {
	verb, args, err := subcommand(e, "keys", args, "create --name N [--tier T]|list|revoke ID")
	if err != nil {
		return err
	}
	fs, flags := newFlags(e, "keys "+verb)
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "key name (create)")
	tiers := fs.String("tier", "", "comma-separated tiers the key may mint for (create; default: default)")
	pos, err := parseAll(fs, args)
	if err != nil {
		return helpOK(err)
	}
	cfg, st, err := openConfigStore(ctx, e, flags)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "create":
		if strings.TrimSpace(*name) == "" {
			return fmt.Errorf("keys create: --name is required")
		}
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
			return printJSON(e.stdout, map[string]any{"id": k.ID, "name": k.Name, "tiers": k.Tiers, "hint": k.Hint, "value": tok.Reveal()})
		}
		fmt.Fprintf(e.stdout, "created app key %s (%s)\n%s\nStore it now: it is shown only once.\n", k.ID, k.Name, tok.Reveal())
		return nil
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if keys == nil {
				keys = []*store.AppKey{}
			}
			return printJSON(e.stdout, keys)
		}
		t := newTable(e.stdout, "ID", "NAME", "HINT", "TIERS", "CREATED", "REVOKED")
		for _, k := range keys {
			rev := "-"
			if !k.RevokedAt.IsZero() {
				rev = k.RevokedAt.UTC().Format(time.RFC3339)
			}
			t.row(k.ID, k.Name, k.Hint, strings.Join(k.Tiers, ","), k.CreatedAt.UTC().Format(time.RFC3339), rev)
		}
		return t.flush()
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("keys revoke: want exactly one key id")
		}
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
	fmt.Fprintf(e.stderr, "voicegate keys: unknown subcommand %q\n", verb)
	return errUsage
}
