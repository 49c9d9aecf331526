package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voicegate/voicegate/internal/server"
)

// help describes one command for its -h: the usage line, what it does, and
// an example, printed around the command's own flags.
type help struct {
	usage   string // "voicegate keys create --name NAME [flags]"
	about   string // one or more sentences
	example string // one or more command lines
}

// flagSet is one command's flags: -h prints the command's help on stdout,
// a bad flag the problem and the help on stderr.
type flagSet struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// cmdFlags returns a flag set for one command whose -h prints h around the
// set's own flags.
func cmdFlags(e env, h help) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(h.usage, flag.ContinueOnError), stdout: e.stdout, stderr: e.stderr}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n\n%s\n\nFlags:\n", h.usage, h.about)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nExample:\n")
		for _, l := range strings.Split(h.example, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	return fs
}

// errHelp reports that -h was handled; commands return nil for it.
var errHelp = errors.New("help shown")

// parse parses args: -h becomes errHelp, a bad flag errUsage.
func (fs *flagSet) parse(args []string) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(fs.stdout)
		fs.Usage()
		return errHelp
	default:
		io.Copy(fs.stderr, &buf)
		return errUsage
	}
}

// helpOK maps errHelp to success.
func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// parseAll parses flags anywhere among args ("revoke ID --store x" as well
// as "--store x revoke ID") and returns the positional arguments.
func (fs *flagSet) parseAll(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		if c == "" {
			cols[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// verb is one subcommand of a command group ("keys create").
type verb struct {
	name, summary string
}

// subcommand picks the verb of "keys create", "sessions list", … "-h"
// alone prints the group's verbs and succeeds; a missing or unknown verb is
// a usage error.
func subcommand(e env, group string, args []string, verbs []verb) (string, []string, error) {
	printVerbs := func(w io.Writer) {
		fmt.Fprintf(w, "usage: voicegate %s <subcommand> [flags]\n\n", group)
		for _, v := range verbs {
			fmt.Fprintf(w, "  %-8s %s\n", v.name, v.summary)
		}
		fmt.Fprintf(w, "\nRun 'voicegate %s <subcommand> -h' for its flags and an example.\n", group)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		printVerbs(e.stdout)
		return "", nil, errHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		printVerbs(e.stderr)
		return "", nil, errUsage
	}
	if !slices.ContainsFunc(verbs, func(v verb) bool { return v.name == args[0] }) {
		fmt.Fprintf(e.stderr, "voicegate %s: unknown subcommand %q\n\n", group, args[0])
		printVerbs(e.stderr)
		return "", nil, errUsage
	}
	return args[0], args[1:], nil
}

func usd(nano int64) string { return fmt.Sprintf("$%.6f", float64(nano)/1e9) }

// stamp formats a time for tables and JSON alike: RFC 3339 in UTC, "" for
// the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// parseTime reads a time flag: RFC 3339, YYYY-MM-DD (UTC midnight) or Unix
// seconds, as the operator API accepts.
func parseTime(flagName, v string) (time.Time, error) {
	t, err := server.ParseTime(flagName, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: %q is not RFC 3339, YYYY-MM-DD or Unix seconds", flagName, v)
	}
	return t, nil
}
