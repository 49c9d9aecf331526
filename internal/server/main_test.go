package server

import (
	"testing"

	"github.com/voicegate/voicegate/internal/leakcheck"
)

// TestMain fails the package when goroutines started by the servers (the lease renewers, the revocation watchers, the fake relay) outlive the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.Options{Mention: "voicegate/"})
}
