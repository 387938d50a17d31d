package history

import (
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// The dead-overlap rule: an attempt alive after its node was killed (beyond the margin),
// beside a later attempt, is a violation; one seen alive while its node was frozen (not
// killed) is not. The drain rule: a run in flight when its node began a graceful stop
// that gets another attempt during the stop is a violation.
func TestCheckFaults(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	runs := []wire.Run{
		{ID: 1, Job: "long", State: "succeeded", Attempt: 2, MaxAttempts: 4, Node: "b", Trigger: "manual", CreatedAt: t0},
		{ID: 2, Job: "long", State: "succeeded", Attempt: 2, MaxAttempts: 4, Node: "c", Trigger: "manual", CreatedAt: t0},
		{ID: 3, Job: "long", State: "succeeded", Attempt: 2, MaxAttempts: 4, Node: "b", Trigger: "manual", CreatedAt: t0},
	}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	execs := []Exec{
		{Run: 1, Attempt: 1, Node: "a", At: at(0), Line: 1}, {Run: 1, Attempt: 2, Node: "b", At: at(2000), Line: 2},
		{Run: 2, Attempt: 1, Node: "a", At: at(100), Line: 3}, {Run: 2, Attempt: 2, Node: "c", At: at(2100), Line: 4},
		{Run: 3, Attempt: 1, Node: "c", At: at(10000), Line: 5}, {Run: 3, Attempt: 2, Node: "b", At: at(12000), Line: 6},
	}
	faults := []Fault{
		{N: 1, Kind: FaultKillProcess, Node: "a", Start: at(1000), End: at(1500)},
		{N: 2, Kind: FaultNodeStop, Node: "c", Start: at(11000), End: at(16000)},
	}
	overlaps := []Overlap{
		{Run: 1, Attempt: 2, Node: "b", At: at(2000), Alive: 1, Line: 7}, // a killed at 1000: a violation
		{Run: 2, Attempt: 2, Node: "c", At: at(1300), Alive: 1, Line: 8}, // within the margin: not one
	}
	rep := Check(Job{Runs: runs, Execs: execs, Overlaps: overlaps, Faults: faults, Duration: 3 * time.Second})
	var got []string
	for _, v := range rep.Violations {
		got = append(got, v.Rule+": "+v.Detail)
	}
	joined := strings.Join(got, "\n")
	if len(got) != 2 || !strings.Contains(joined, "dead-overlap: run 1: attempt 2") || !strings.Contains(joined, "drain: run 3: attempt 1 was running on c") {
		t.Fatalf("violations:\n%s\nwant one dead-overlap (run 1) and one drain (run 3)", joined)
	}
	// Without the faults, the same lines break nothing.
	if rep := Check(Job{Runs: runs, Execs: execs, Overlaps: overlaps, Duration: 3 * time.Second}); len(rep.Violations) != 0 {
		t.Fatalf("violations without faults: %+v", rep.Violations)
	}
}
