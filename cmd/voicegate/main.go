// Command voicegate is the Realtime voice gateway: see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "voicegate:", err)
		}
		os.Exit(1)
	}
}

// env is what a subcommand may touch of the outside world, so tests can run
// the real program in-process with their own environment and streams.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// errUsage reports a usage error already printed to stderr.
var errUsage = errors.New("usage")

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":    {"run the gateway", cmdServe},
		"dev":      {"gateway + built-in simulator + demo page, offline", cmdDev},
		"sim":      {"the upstream Realtime API simulator alone", cmdSim},
		"keys":     {"create, list or revoke app keys", cmdKeys},
		"sessions": {"list, show or revoke sessions", cmdSessions},
		"usage":    {"usage and cost from the ledger", cmdUsage},
		"audit":    {"the audit trail, newest first", cmdAudit},
		"version":  {"print version information", cmdVersion},
	}
}

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "voicegate: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return errUsage
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: voicegate <command> [flags]")
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'voicegate <command> -h' for the flags of a command and an example.")
	fmt.Fprintln(w, "The store commands (keys, sessions, usage, audit) read --store, default sqlite:voicegate.db,")
	fmt.Fprintln(w, "the store of voicegate dev and serve.")
}
