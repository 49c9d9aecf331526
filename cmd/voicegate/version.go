package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func cmdVersion(_ context.Context, e env, args []string) error {
	fs := cmdFlags(e, help{usage: "voicegate version", about: "Print the version, the commit and the Go version of this binary.", example: "voicegate version"})
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "voicegate %s\ncommit %s\n%s\n", version, commit, runtime.Version())
	return nil
}
