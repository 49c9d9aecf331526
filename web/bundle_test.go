package web

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBundleFresh rebuilds the demo page's bundle from web/ui (its sources
// and the packages its package-lock.json pins) and fails when the
// committed static/demo.js differs: the binary embeds what is committed,
// so `voicegate dev` needs neither npm nor network.
func TestBundleFresh(t *testing.T) {
	if _, err := os.Stat(filepath.Join("ui", "node_modules", "esbuild")); err != nil {
		t.Fatalf("web/ui/node_modules is missing: run `cd web/ui && npm ci` (scripts/test.sh does): %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	cmd := exec.Command("node", "build.mjs", "--check")
	cmd.Dir = "ui"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
}

// TestPagesEmbedded: the pages and their assets are in the binary.
func TestPagesEmbedded(t *testing.T) {
	for _, name := range []string{"index.html", "demo.js", "style.css", "admin/index.html", "admin.js"} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}
