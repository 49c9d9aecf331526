package main

import (
	"testing"

	"github.com/voicegate/voicegate/internal/leakcheck"
)

// TestMain fails the package when goroutines started by the program (the servers, the relay, the simulator, the revocation watcher) outlive the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.Options{Mention: "voicegate/"})
}
