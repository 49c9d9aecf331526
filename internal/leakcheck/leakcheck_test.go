package leakcheck

import "testing"

// TestMentionedSkipsMain: the goroutine running Main names the package's
// TestMain and must not count as a leak of that package.
func TestMentionedSkipsMain(t *testing.T) {
	stacks := "goroutine 1 [running]:\ngithub.com/voicegate/voicegate/internal/leakcheck.Main(0x1, {})\n\t/x/leakcheck.go:40\ngithub.com/voicegate/voicegate/internal/sim.TestMain(0x1)\n\n" +
		"goroutine 7 [chan receive]:\ninternal/fuzz.(*worker).coordinate()\n\n" +
		"goroutine 9 [select]:\ngithub.com/voicegate/voicegate/internal/sim.(*session).run()\n"
	got := mentioned(stacks, "voicegate/internal/sim")
	if len(got) != 1 || got[0][:12] != "goroutine 9 " {
		t.Errorf("mentioned = %q, want only goroutine 9", got)
	}
}
