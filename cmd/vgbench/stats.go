package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// samples collects durations (nanoseconds), bounded so a long run cannot
// exhaust memory: past maxSamples every other sample is kept.
type samples struct {
	mu   sync.Mutex
	v    []int64
	skip int // keep 1 in skip once full
	n    int
}

const maxSamples = 4 << 20

func (s *samples) add(d int64) {
	s.mu.Lock()
	s.n++
	if len(s.v) >= maxSamples {
		if s.skip == 0 {
			s.skip = 2
		}
		if s.n%s.skip != 0 {
			s.mu.Unlock()
			return
		}
	}
	s.v = append(s.v, d)
	s.mu.Unlock()
}

// dist is a latency distribution's summary.
type dist struct {
	N              int
	P50, P99, P999 time.Duration
	Max            time.Duration
}

func (s *samples) dist() dist {
	s.mu.Lock()
	v := slices.Clone(s.v)
	n := s.n
	s.mu.Unlock()
	if len(v) == 0 {
		return dist{}
	}
	slices.Sort(v)
	q := func(p float64) time.Duration {
		i := int(p * float64(len(v)-1))
		return time.Duration(v[i])
	}
	return dist{N: n, P50: q(0.50), P99: q(0.99), P999: q(0.999), Max: time.Duration(v[len(v)-1])}
}

// procStat is the CPU time and resident memory of a process tree.
type procStat struct {
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// clockTicks is USER_HZ: Linux reports utime/stime in 1/100 s on every
// architecture Go supports.
const clockTicks = 100

// treeStat sums procStat over root and its descendants (nginx workers).
func treeStat(root int) procStat {
	if root <= 0 {
		return procStat{}
	}
	pids := descendants(root)
	var st procStat
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 22 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		st.CPU += time.Duration(ut+stt) * time.Second / clockTicks
		st.RSS += statusRSS(pid)
	}
	return st
}

func statusRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// descendants returns root and every process below it.
func descendants(root int) []int {
	parent := map[int]int{}
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		pp, _ := strconv.Atoi(f[1])
		parent[pid] = pp
	}
	out := []int{root}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if slices.Contains(out, pp) && !slices.Contains(out, pid) {
				out = append(out, pid)
				changed = true
			}
		}
	}
	return out
}

// selfCPU is this process's CPU time (the load generator and the
// simulator), from /proc/self/stat.
func selfCPU() time.Duration { return treeStatSelf() }

func treeStatSelf() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stt) * time.Second / clockTicks
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
