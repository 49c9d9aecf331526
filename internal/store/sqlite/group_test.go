package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// openQuiet opens a store without the background prune, so the only
// writes are the test's.
func openQuiet(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s := openFile(t, path, append([]sqlite.Option{sqlite.WithPruneInterval(0)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s
}

func newSession(id string) *store.Session {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &store.Session{ID: id, TokenHash: "hash-" + id, User: "u-" + id, Tier: "default",
		CreatedAt: now, ExpiresAt: now.Add(time.Minute), State: store.StateMinted}
}

// waitQueued waits until n writes wait for the (held) writer.
func waitQueued(t *testing.T, s *sqlite.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after 10 s, want %d", s.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// answers collects the results of writes run in goroutines.
type answers struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs map[string]error
}

func (a *answers) run(name string, f func() error) {
	a.wg.Go(func() {
		err := f()
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.errs == nil {
			a.errs = map[string]error{}
		}
		a.errs[name] = err
	})
}

// wait waits for every write to answer, failing the test after 10 s.
func (a *answers) wait(t *testing.T) map[string]error {
	t.Helper()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes not answered within 10 s")
	}
	return a.errs
}

// TestGroupCommit: writes queued while the writer is busy commit together,
// and each caller is answered after its write is committed.
func TestGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []sqlite.Option
		wantTxns uint64 // for the 64 queued creates
	}{
		{"grouped", nil, 1},
		{"one per commit", []sqlite.Option{sqlite.WithMaxBatch(1)}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"), tc.opts...)
			const n = 64
			release := s.HoldWriter(t)
			defer release()
			before := s.WriteStats()
			var a answers
			for i := range n {
				id := fmt.Sprintf("vgs_%d", i)
				a.run(id, func() error { return s.CreateSession(ctx, newSession(id)) })
			}
			waitQueued(t, s, n)
			release()
			for id, err := range a.wait(t) {
				if err != nil {
					t.Errorf("CreateSession(%s): %v", id, err)
				}
			}
			after := s.WriteStats()
			// The held write commits on its own, then the 64.
			if got, want := after.Commits-before.Commits, 1+tc.wantTxns; got != want {
				t.Errorf("%d commits for the held write and %d creates, want %d", got, n, want)
			}
			if got := after.Writes - before.Writes; got != n+1 {
				t.Errorf("%d writes committed, want %d", got, n+1)
			}
			list, err := s.ListSessions(ctx, store.SessionFilter{Limit: 2 * n})
			if err != nil || len(list) != n {
				t.Errorf("ListSessions = %d sessions, %v; want %d", len(list), err, n)
			}
		})
	}
}

// TestGroupCommitConcurrent: concurrent writers, unheld, still share
// commits.
func TestGroupCommitConcurrent(t *testing.T) {
	ctx := t.Context()
	s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"))
	const n = 64
	before := s.WriteStats()
	var a answers
	start := make(chan struct{})
	for i := range n {
		id := fmt.Sprintf("vgs_%d", i)
		a.run(id, func() error { <-start; return s.CreateSession(ctx, newSession(id)) })
	}
	close(start)
	for id, err := range a.wait(t) {
		if err != nil {
			t.Errorf("CreateSession(%s): %v", id, err)
		}
	}
	after := s.WriteStats()
	if c, w := after.Commits-before.Commits, after.Writes-before.Writes; w != n || c >= w {
		t.Errorf("%d commits for %d writes: want %d writes in fewer commits", c, w, n)
	}
}

// TestGroupCommitFailureIsolated: writes that fail inside a batch roll back
// their own changes only; the batch's other writes commit.
func TestGroupCommitFailureIsolated(t *testing.T) {
	ctx := t.Context()
	s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"))
	if err := s.CreateSession(ctx, newSession("vgs_taken")); err != nil {
		t.Fatal(err)
	}
	errFn := errors.New("fn refuses")
	release := s.HoldWriter(t)
	defer release()
	before := s.WriteStats()
	var a answers
	a.run("create a", func() error { return s.CreateSession(ctx, newSession("vgs_a")) })
	a.run("create taken", func() error { return s.CreateSession(ctx, newSession("vgs_taken")) })
	a.run("update refused", func() error {
		_, err := s.UpdateSession(ctx, "vgs_taken", func(x *store.Session) error { x.User = "changed"; return errFn })
		return err
	})
	a.run("write then fail", func() error { return s.WriteThenFail(ctx, "rolled-back", errFn) })
	a.run("audit", func() error { return s.AppendAudit(ctx, store.AuditEntry{Kind: "kept", SessionID: "vgs_a"}) })
	a.run("create b", func() error { return s.CreateSession(ctx, newSession("vgs_b")) })
	waitQueued(t, s, 6)
	release()
	errs := a.wait(t)
	if got := s.WriteStats().Commits - before.Commits; got != 2 {
		t.Errorf("%d commits, want 2 (the held write, then one batch)", got)
	}
	if err := errs["create taken"]; !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateSession of a taken id: %v, want ErrConflict", err)
	}
	for _, name := range []string{"update refused", "write then fail"} {
		if err := errs[name]; !errors.Is(err, errFn) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want fn's own error", name, err)
		}
	}
	for _, name := range []string{"create a", "audit", "create b"} {
		if err := errs[name]; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, id := range []string{"vgs_a", "vgs_b"} {
		if _, err := s.Session(ctx, id); err != nil {
			t.Errorf("Session(%s) after the batch: %v", id, err)
		}
	}
	if got, err := s.Session(ctx, "vgs_taken"); err != nil || got.User != "u-vgs_taken" {
		t.Errorf("refused update changed the session: %+v, %v", got, err)
	}
	if got, err := s.AuditEntries(ctx, store.AuditFilter{Kind: "kept"}); err != nil || len(got) != 1 {
		t.Errorf("audit of kind kept = %v, %v; want one", got, err)
	}
	if got, err := s.AuditEntries(ctx, store.AuditFilter{Kind: "rolled-back"}); err != nil || len(got) != 0 {
		t.Errorf("a failed write's insert stayed: %v, %v", got, err)
	}
}

// TestGroupCommitCancelledSkipped: a write whose ctx ends while it waits
// for the writer is answered with the ctx error at once and never runs.
func TestGroupCommitCancelledSkipped(t *testing.T) {
	ctx := t.Context()
	s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"))
	release := s.HoldWriter(t)
	defer release()
	cctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() { got <- s.CreateSession(cctx, newSession("vgs_cancelled")) }()
	var a answers
	a.run("create kept", func() error { return s.CreateSession(ctx, newSession("vgs_kept")) })
	waitQueued(t, s, 2)
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("cancelled CreateSession: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled CreateSession not answered while the writer is held")
	}
	release()
	if err := a.wait(t)["create kept"]; err != nil {
		t.Errorf("CreateSession beside the cancelled one: %v", err)
	}
	if _, err := s.Session(ctx, "vgs_cancelled"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Session of the cancelled create: %v, want ErrNotFound", err)
	}
	if _, err := s.Session(ctx, "vgs_kept"); err != nil {
		t.Errorf("Session(vgs_kept): %v", err)
	}
	// A ctx already done is refused before queueing.
	if err := s.CreateSession(cctx, newSession("vgs_late")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession with a done ctx: %v, want context.Canceled", err)
	}
}

// TestDurable: WithDurable sets synchronous=FULL on every connection; the
// default is NORMAL.
func TestDurable(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		durable bool
		want    int
	}{{false, 1}, {true, 2}} {
		s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"), sqlite.WithDurable(tc.durable))
		if err := s.CreateSession(ctx, newSession("vgs_1")); err != nil {
			t.Fatal(err)
		}
		// Four connections held at once, so four distinct ones are asked.
		var wg, held sync.WaitGroup
		held.Add(4)
		for range 4 {
			wg.Go(func() {
				conn, err := s.DB().Conn(ctx)
				held.Done()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				held.Wait()
				var got int
				if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil || got != tc.want {
					t.Errorf("durable %v: PRAGMA synchronous = %d, %v; want %d", tc.durable, got, err, tc.want)
				}
			})
		}
		wg.Wait()
	}
}

// TestCloseDrainsWrites: Close lets every queued write commit and answer;
// writes after Close fail with ErrUnavailable.
func TestCloseDrainsWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	s := openFile(t, path, sqlite.WithPruneInterval(0))
	release := s.HoldWriter(t)
	defer release()
	const n = 32
	var a answers
	for i := range n {
		id := fmt.Sprintf("vgs_%d", i)
		a.run(id, func() error { return s.CreateSession(ctx, newSession(id)) })
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for deadline := time.Now().Add(10 * time.Second); !s.Closing(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Close did not close the queue within 10 s")
		}
	}
	if err := s.CreateSession(ctx, newSession("vgs_after")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("CreateSession while closing: %v, want ErrUnavailable", err)
	}
	release()
	for id, err := range a.wait(t) {
		if err != nil {
			t.Errorf("CreateSession(%s) queued before Close: %v", id, err)
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s")
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Kind: "late"}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("AppendAudit after Close: %v, want ErrUnavailable", err)
	}
	s = openQuiet(t, path)
	if list, err := s.ListSessions(ctx, store.SessionFilter{Limit: 2 * n}); err != nil || len(list) != n {
		t.Errorf("after reopen: %d sessions, %v; want %d", len(list), err, n)
	}
}

// TestWritePanicReachesCaller: a panic in an UpdateSession fn is raised
// in the caller, not in the writer, and the store goes on.
func TestWritePanicReachesCaller(t *testing.T) {
	ctx := t.Context()
	s := openQuiet(t, filepath.Join(t.TempDir(), "vg.db"))
	if err := s.CreateSession(ctx, newSession("vgs_1")); err != nil {
		t.Fatal(err)
	}
	var got atomic.Value
	func() {
		defer func() { got.Store(recover()) }()
		_, _ = s.UpdateSession(ctx, "vgs_1", func(*store.Session) error { panic("boom") })
	}()
	if p := got.Load(); p != "boom" {
		t.Errorf("recovered %v, want boom", p)
	}
	if err := s.CreateSession(ctx, newSession("vgs_2")); err != nil {
		t.Errorf("CreateSession after a panicking write: %v", err)
	}
}
