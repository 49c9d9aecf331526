package spool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// file is the on-disk spool: ops.jsonl holds one op per line, applied holds
// the count of leading lines already applied to the backend.
type file struct {
	dir string
	f   *os.File
}

const (
	opsName     = "ops.jsonl"
	appliedName = "applied"
)

// openFile opens (creating) the spool in dir and loads its ops. A torn last
// line (a crash mid-append, before fsync returned) is discarded.
func openFile(dir string) (*file, []op, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, 0, fmt.Errorf("spool: create dir: %w", err)
	}
	path := filepath.Join(dir, opsName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, fmt.Errorf("spool: read: %w", err)
	}
	var ops []op
	good := 0 // bytes of complete, parseable lines
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var o op
		if good+len(line) >= len(data) || json.Unmarshal(line, &o) != nil {
			break // no trailing newline or garbage: torn write
		}
		ops = append(ops, o)
		good += len(line) + 1
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("spool: open: %w", err)
	}
	if err := f.Truncate(int64(good)); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("spool: truncate torn tail: %w", err)
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("spool: seek: %w", err)
	}
	applied := 0
	if b, err := os.ReadFile(filepath.Join(dir, appliedName)); err == nil {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && n >= 0 {
			applied = min(n, len(ops))
		}
	}
	return &file{dir: dir, f: f}, ops, applied, nil
}

// append writes o as one line and fsyncs it.
func (f *file) append(o op) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode op: %w", err)
	}
	if _, err := f.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// setApplied durably records that the first n ops are applied.
func (f *file) setApplied(n int) error {
	tmp := filepath.Join(f.dir, appliedName+".tmp")
	if err := writeSync(tmp, []byte(strconv.Itoa(n)+"\n")); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, appliedName)); err != nil {
		return fmt.Errorf("record applied: %w", err)
	}
	return nil
}

// reset empties the spool once every op is applied: ops first, then the
// offset, so a crash in between leaves an offset past the end (clamped on
// load) rather than ops that look unapplied.
func (f *file) reset() error {
	if err := f.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if _, err := f.f.Seek(0, 0); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	if err := os.Remove(filepath.Join(f.dir, appliedName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove offset: %w", err)
	}
	return nil
}

func (f *file) close() error { return f.f.Close() }

func writeSync(path string, b []byte) error {
	w, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record applied: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return fmt.Errorf("record applied: %w", err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return fmt.Errorf("record applied: %w", err)
	}
	return w.Close()
}
