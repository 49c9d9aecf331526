package sim

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when session goroutines outlive the tests.
func TestMain(m *testing.M) {
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
			var mine []string
			for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
				if strings.Contains(g, "voicegate/internal/sim") {
					mine = append(mine, g)
				}
			}
			if len(mine) > 0 {
				fmt.Fprintf(os.Stderr, "goroutines leaked: %d > baseline %d\n%s\n", n, base, strings.Join(mine, "\n\n"))
				code = 1
			}
		}
	}
	os.Exit(code)
}
