package live

import (
	"testing"

	"github.com/voicegate/voicegate/internal/store"
)

func TestSet(t *testing.T) {
	var s Set[int]
	a, b := &store.Session{ID: "vgs_a", User: "u"}, &store.Session{ID: "vgs_b", User: "v"}
	if !s.Add(1, a) || !s.Add(2, b) || s.Len() != 2 || !s.Has("vgs_b") || s.Has("vgs_c") {
		t.Fatal("add")
	}
	if got := s.Select(func(_ int, r *store.Session) bool { return r.User == "u" }); len(got) != 1 || got[0] != 1 {
		t.Fatalf("select %v", got)
	}
	if got := s.Close(); len(got) != 2 || !s.Shutting() || s.Add(3, a) {
		t.Fatalf("close %v", got)
	}
	done := s.Done()
	s.Remove(1)
	select {
	case <-done:
		t.Fatal("done with a connection left")
	default:
	}
	s.Remove(2)
	<-done
}
