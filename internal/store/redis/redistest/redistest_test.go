package redistest

import (
	"net/url"
	"strings"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	raw, stop, restart := Start(t)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("url %q: %v", raw, err)
	}
	if got, err := command(u.Host, "SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET: %q, %v", got, err)
	}
	if got, err := command(u.Host, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET: %q, %v", got, err)
	}

	restart() // same port, empty data
	if got, err := command(u.Host, "EXISTS", "k"); err != nil || got != "0" {
		t.Fatalf("EXISTS after restart: %q, %v; want 0 (data lost)", got, err)
	}

	stop()
	if _, err := command(u.Host, "PING"); err == nil {
		t.Fatal("server still answers after stop")
	}
	stop() // idempotent
}

func TestStartCluster(t *testing.T) {
	addr := StartCluster(t)
	info, err := command(addr, "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO: %q, %v", info, err)
	}
	// Keys in different slots are refused together, as on a real cluster.
	if _, err := command(addr, "MSET", "a", "1", "b", "2"); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MSET across slots: %v, want CROSSSLOT", err)
	}
	if got, err := command(addr, "MSET", "{t}a", "1", "{t}b", "2"); err != nil || got != "OK" {
		t.Fatalf("MSET within one tag: %q, %v", got, err)
	}
}
