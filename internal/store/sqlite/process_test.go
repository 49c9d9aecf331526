package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/store"
)

const childEnv = "VOICEGATE_SQLITE_CHILD_DB"

// work is what both processes do at once on one file.
func work(ctx context.Context, s store.Store, who string) (inserted int, granted int64, err error) {
	for i := range 40 {
		if _, err := s.UpdateSession(ctx, "vgs_shared", func(sess *store.Session) error {
			sess.LiveSeconds++
			return nil
		}); err != nil {
			return 0, 0, err
		}
		ok, err := s.RecordUsage(ctx, store.LedgerEntry{SessionID: "vgs_shared", ResponseID: fmt.Sprintf("resp_%d", i%20)})
		if err != nil {
			return 0, 0, err
		}
		if ok {
			inserted++
		}
		r, err := s.Reserve(ctx, store.Reservation{
			ID:       fmt.Sprintf("%s-%d", who, i),
			Accounts: []store.BudgetAccount{{Key: "user:day:shared", LimitNano: 1000}},
			Want:     40, Min: 40,
		})
		if err != nil {
			return 0, 0, err
		}
		granted += r.Granted
	}
	return inserted, granted, nil
}

// TestChildProcess is the other process of TestTwoProcesses; it does
// nothing unless started by it.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("run by TestTwoProcesses")
	}
	s := openFile(t, path)
	defer s.Close()
	inserted, granted, err := work(t.Context(), s, "child")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("child inserted=%d granted=%d\n", inserted, granted)
	if err := s.PublishRevocation(t.Context(), store.Revocation{Kind: "user", ID: "from-child", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestTwoProcesses runs the test binary again as a second process on the
// same file: session updates, the ledger and budgets stay exact across
// processes, and a revocation published by the child reaches the parent.
func TestTwoProcesses(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vg.db")
	s := openFile(t, path)
	defer s.Close()
	if err := s.CreateSession(ctx, &store.Session{ID: "vgs_shared", TokenHash: "h", CreatedAt: time.Now(), State: store.StateLive}); err != nil {
		t.Fatal(err)
	}
	revs, err := s.SubscribeRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var out []byte
	var childErr error
	var wg sync.WaitGroup
	wg.Go(func() { out, childErr = cmd.CombinedOutput() })
	inserted, granted, err := work(ctx, s, "parent")
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if childErr != nil {
		t.Fatalf("child: %v\n%s", childErr, out)
	}
	var childInserted int
	var childGranted int64
	if _, err := fmt.Sscanf(string(out[max(bytes.Index(out, []byte("child inserted=")), 0):]), "child inserted=%d granted=%d", &childInserted, &childGranted); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}

	got, err := s.Session(ctx, "vgs_shared")
	if err != nil {
		t.Fatal(err)
	}
	if got.LiveSeconds != 80 {
		t.Errorf("LiveSeconds = %v after 40 increments in each process, want 80", got.LiveSeconds)
	}
	if inserted+childInserted != 20 {
		t.Errorf("the two processes inserted %d+%d ledger entries, want 20 in all", inserted, childInserted)
	}
	if total := granted + childGranted; total != 1000 {
		t.Errorf("the two processes were granted %d in all on a budget of 1000, want exactly 1000", total)
	}
	select {
	case r := <-revs:
		if r.ID != "from-child" {
			t.Errorf("received %+v", r)
		}
	case <-time.After(time.Second):
		t.Error("revocation published by the child process not received")
	}
}
