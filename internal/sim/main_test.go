package sim

import (
	"testing"

	"github.com/voicegate/voicegate/internal/leakcheck"
)

// TestMain fails the package when session goroutines outlive the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.Options{Mention: "voicegate/internal/sim", OnlyMentioned: true})
}
