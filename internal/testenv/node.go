package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NodeTimeout bounds one RunNode.
const NodeTimeout = 60 * time.Second

// NodeDir returns the absolute path of the e2e Node project (the e2e
// directory at the root of the module holding the working directory). It
// returns an error saying what to do when the project's node_modules (with
// the pinned SDKs) is missing or node is not installed.
func NodeDir() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openai", "agents-realtime")); err != nil {
		return "", fmt.Errorf("e2e/node_modules is missing: run `cd e2e && npm ci` first (%w)", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not installed: %w", err)
	}
	return dir, nil
}

// RequireNodeDir is NodeDir for a test: it fails t (it does not skip) when
// the Node project cannot run.
func RequireNodeDir(t testing.TB) string {
	t.Helper()
	dir, err := NodeDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// RunNode runs `node script` in dir with env appended to the process
// environment, within NodeTimeout, and decodes the last line the script
// prints on stdout as JSON into out. It fails t with the script's stdout
// and stderr when the script fails or its last line is not JSON.
func RunNode(t testing.TB, dir, script string, env []string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), NodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s", script, err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
		t.Fatalf("node %s output %q: %v (stderr %s)", script, stdout.String(), err, stderr.String())
	}
}

// moduleRoot is the nearest directory at or above the working directory
// that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find go.mod: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
