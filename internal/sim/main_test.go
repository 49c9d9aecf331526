package sim

import (
	"os"
	"testing"

	"github.com/voicegate/voicegate/internal/leakcheck"
)

// TestMain fails the package when session goroutines outlive the tests.
// With loadClientEnv set, the binary is the load process of
// BenchmarkRealtimeSessions instead.
func TestMain(m *testing.M) {
	if os.Getenv(loadClientEnv) != "" {
		os.Exit(loadClientMain())
	}
	leakcheck.Main(m, leakcheck.Options{Mention: "voicegate/internal/sim", OnlyMentioned: true})
}
