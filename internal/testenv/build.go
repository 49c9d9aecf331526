package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MainWithVoicegate is a TestMain for packages that run the real binary:
// it builds cmd/voicegate into a temporary directory, stores its path in
// *bin, runs the tests and removes the directory. A failed build exits 1.
func MainWithVoicegate(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "vg-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "voicegate")
	out, err := exec.Command("go", "build", "-o", *bin, "github.com/voicegate/voicegate/cmd/voicegate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build voicegate: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
