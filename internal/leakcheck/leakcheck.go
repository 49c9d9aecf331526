// Package leakcheck fails a test package whose goroutines outlive its tests.
// It is shared by the TestMain of every package that starts servers,
// sessions or watchers, so each checks leaks the same way.
package leakcheck

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Options tune Main.
type Options struct {
	// Mention selects the goroutine stacks worth printing: those that
	// contain it (for example "voicegate/").
	Mention string
	// OnlyMentioned fails only when a leaked stack contains Mention, so
	// goroutines of libraries that wind down on their own are tolerated.
	OnlyMentioned bool
}

// Main runs the tests, then waits up to five seconds for the goroutine count
// to return to its baseline and exits non-zero (printing the stacks that
// contain o.Mention) when it does not.
func Main(m *testing.M, o Options) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			mine := mentioned(string(buf[:runtime.Stack(buf, true)]), o.Mention)
			if !o.OnlyMentioned || len(mine) > 0 {
				fmt.Fprintf(os.Stderr, "goroutines leaked: %d > baseline %d\n%s\n", n, base, strings.Join(mine, "\n\n"))
				code = 1
			}
		}
	}
	os.Exit(code)
}

// mentioned keeps the goroutine stacks that contain s, except the one
// running Main: it names the package's TestMain, and counting it made a
// package fail whenever another goroutine (the fuzzing coordinator's of
// go test -fuzz) outlived the tests.
func mentioned(stacks, s string) []string {
	var out []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "internal/leakcheck.Main(") {
			continue
		}
		if strings.Contains(g, s) {
			out = append(out, g)
		}
	}
	return out
}
