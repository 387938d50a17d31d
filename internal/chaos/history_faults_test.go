package chaos

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
)

// A watched execution records its shell's pid, and an attempt that begins while an
// earlier attempt of its run is still alive says so; a dead or unrelated process is not
// an overlap.
func TestWatchedExecScriptWitnessesOverlaps(t *testing.T) {
	path := t.TempDir() + "/long.exec"
	first := testCommand(t, WatchedExecScript(path, "sleep 30"), "TANDEM_RUN_ID=5", "TANDEM_ATTEMPT=1", "NODE=a")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if execs, _ := ReadExecLog(path); len(execs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first attempt wrote no execution line")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Another run's attempt is no overlap of run 5.
	for _, env := range [][]string{{"TANDEM_RUN_ID=6", "TANDEM_ATTEMPT=2", "NODE=b"}, {"TANDEM_RUN_ID=5", "TANDEM_ATTEMPT=2", "NODE=b"}} {
		if out, err := testCommand(t, WatchedExecScript(path, "true"), env...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	first.Process.Kill()
	first.Wait()
	if out, err := testCommand(t, WatchedExecScript(path, "true"), "TANDEM_RUN_ID=5", "TANDEM_ATTEMPT=3", "NODE=c").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	execs, err := ReadExecLog(path)
	if err != nil || len(execs) != 4 || execs[0].PID != first.Process.Pid {
		t.Fatalf("executions %+v %v; want 4, the first with pid %d", execs, err, first.Process.Pid)
	}
	ovs, err := ReadOverlaps(path)
	if err != nil || len(ovs) != 1 || ovs[0].Run != 5 || ovs[0].Attempt != 2 || ovs[0].Alive != 1 || ovs[0].Node != "b" {
		b, _ := os.ReadFile(path)
		t.Fatalf("overlaps %+v %v; want one: attempt 2 of run 5 found attempt 1 alive\n%s", ovs, err, b)
	}
}

// The dead-overlap rule: an attempt alive after its node was killed (beyond the margin),
// beside a later attempt, is a violation; one seen alive while its node was frozen (not
// killed) is not. The drain rule: a run in flight when its node began a graceful stop
// that gets another attempt during the stop is a violation.
func TestCheckFaults(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	runs := []api.Run{
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
	faults := []FaultRecord{
		{N: 1, Kind: FaultKillProcess, Node: "a", Start: at(1000), End: at(1500)},
		{N: 2, Kind: FaultNodeStop, Node: "c", Start: at(11000), End: at(16000)},
	}
	overlaps := []Overlap{
		{Run: 1, Attempt: 2, Node: "b", At: at(2000), Alive: 1, Line: 7}, // a killed at 1000: a violation
		{Run: 2, Attempt: 2, Node: "c", At: at(1300), Alive: 1, Line: 8}, // within the margin: not one
	}
	rep := Check(History{Runs: runs, Execs: execs, Overlaps: overlaps, Faults: faults, Duration: 3 * time.Second})
	var got []string
	for _, v := range rep.Violations {
		got = append(got, v.Rule+": "+v.Detail)
	}
	joined := strings.Join(got, "\n")
	if len(got) != 2 || !strings.Contains(joined, "dead-overlap: run 1: attempt 2") || !strings.Contains(joined, "drain: run 3: attempt 1 was running on c") {
		t.Fatalf("violations:\n%s\nwant one dead-overlap (run 1) and one drain (run 3)", joined)
	}
	// Without the faults, the same lines break nothing.
	if rep := Check(History{Runs: runs, Execs: execs, Overlaps: overlaps, Duration: 3 * time.Second}); len(rep.Violations) != 0 {
		t.Fatalf("violations without faults: %+v", rep.Violations)
	}
}
