package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goProfile is the top of one Go profile of a voicegate target, fetched
// from its --debug-addr listener while a load ran.
type goProfile struct {
	Target, Label string
	Kind          string // "cpu", "heap"
	Explains      string // the goals it explains
	Note          string // e.g. the goroutine count
	Lines         []string
}

// goCPUProfile records a CPU profile of t (seconds long) while load runs.
func goCPUProfile(ctx context.Context, t *target, rep *report, label, explains string, seconds int, load func()) {
	if t.debugAddr == "" {
		load()
		return
	}
	got := make(chan []byte, 1)
	go func() { // owner: goCPUProfile; ends with the profile
		b, _ := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.debugAddr, seconds), time.Duration(seconds+30)*time.Second)
		got <- b
	}()
	load()
	prof := <-got
	lines, err := pprofTop(ctx, prof, "-top", "-nodecount=22")
	if err != nil {
		return
	}
	rep.goProfiles = append(rep.goProfiles, goProfile{Target: t.Name, Label: label, Kind: "cpu", Explains: explains, Lines: lines})
}

// goHeapProfile records the heap in use by t and its goroutine count (idle
// sessions held open at that moment).
func goHeapProfile(ctx context.Context, t *target, rep *report, label, explains string) {
	if t.debugAddr == "" {
		return
	}
	heap, err := fetch(ctx, "http://"+t.debugAddr+"/debug/pprof/heap?gc=1", 30*time.Second)
	if err != nil {
		return
	}
	lines, err := pprofTop(ctx, heap, "-sample_index=inuse_space", "-top", "-nodecount=18")
	if err != nil {
		return
	}
	note := ""
	if g, err := fetch(ctx, "http://"+t.debugAddr+"/debug/pprof/goroutine?debug=1", 30*time.Second); err == nil {
		first, _, _ := strings.Cut(string(g), "\n")
		note = first // "goroutine profile: total N"
	}
	rep.goProfiles = append(rep.goProfiles, goProfile{Target: t.Name, Label: label, Kind: "heap", Explains: explains, Note: note, Lines: lines})
}

func fetch(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// pprofTop runs `go tool pprof` with args on a profile and returns its
// table (the header lines dropped).
func pprofTop(ctx context.Context, prof []byte, args ...string) ([]string, error) {
	f, err := os.CreateTemp("", "vgbench-*.pprof")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(prof); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), f.Name())...).Output()
	if err != nil {
		return nil, err
	}
	var lines []string
	table := false
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			table = true
		}
		if table && strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	if len(lines) < 2 { // a header alone: too few samples (a tiny heap)
		return nil, fmt.Errorf("pprof %s: no table", filepath.Base(f.Name()))
	}
	return lines, nil
}
