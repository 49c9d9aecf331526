package redis

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The helper process of TestLeaseOfKilledProcessFrees: it holds a lease
// and renews it until it is killed.
func TestHelperLeaseHolder(t *testing.T) {
	url := os.Getenv("VG_TEST_LEASE_URL")
	if url == "" {
		t.Skip("helper process only")
	}
	s := open(t, url, os.Getenv("VG_TEST_LEASE_PREFIX"))
	ctx := context.Background()
	const ttl = 400 * time.Millisecond
	ok, err := s.AcquireLease(ctx, "instance-cap", "helper", 1, ttl)
	if err != nil || !ok {
		t.Fatalf("helper acquire: %v, %v", ok, err)
	}
	os.Stdout.WriteString("held\n")
	for { // until SIGKILL
		time.Sleep(ttl / 4)
		if err := s.RenewLease(ctx, "instance-cap", "helper", ttl); err != nil {
			t.Fatalf("helper renew: %v", err)
		}
	}
}

// TestLeaseOfKilledProcessFrees: another process holds the only slot and
// keeps renewing it; once it is SIGKILLed the slot frees within the lease
// ttl, and not while it was alive.
func TestLeaseOfKilledProcessFrees(t *testing.T) {
	url, _, _ := testServer(t)
	prefix := uniquePrefix()
	s := open(t, url, prefix)
	ctx := context.Background()
	const ttl = 400 * time.Millisecond

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLeaseHolder$", "-test.v")
	cmd.Env = append(os.Environ(), "VG_TEST_LEASE_URL="+url, "VG_TEST_LEASE_PREFIX="+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	held := make(chan bool, 1)
	go func() { // exits when the helper's stdout closes
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "held" {
				held <- true
			}
		}
		close(held)
	}()
	select {
	case ok := <-held:
		if !ok {
			t.Fatal("helper exited before holding the lease")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not take the lease")
	}

	// Alive and renewing: the slot stays taken for well over one ttl.
	aliveUntil := time.Now().Add(2 * ttl)
	for time.Now().Before(aliveUntil) {
		if ok, err := s.AcquireLease(ctx, "instance-cap", "me", 1, ttl); err != nil || ok {
			t.Fatalf("acquire while the helper lives: %v, %v; want refused", ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, 5*time.Second, "slot of the killed process freed", func() bool {
		ok, err := s.AcquireLease(ctx, "instance-cap", "me", 1, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if took := time.Since(killed); took > ttl+300*time.Millisecond {
		t.Fatalf("slot freed %s after the kill, want within the ttl %s", took, ttl)
	}
}
