package chaos

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestExecScriptWritesOneLine(t *testing.T) {
	path := t.TempDir() + "/it's.exec"
	execs, err := ReadExecLog(path)
	if err != nil || len(execs) != 0 {
		t.Fatalf("a log not yet written: %v %v", execs, err)
	}
	cmd := testCommand(t, ExecScript(path, "true"), "TANDEM_RUN_ID=7", "TANDEM_ATTEMPT=2", "NODE=b")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	execs, err = ReadExecLog(path)
	if err != nil || len(execs) != 1 {
		t.Fatalf("%v %v", execs, err)
	}
	if e := execs[0]; e.Run != 7 || e.Attempt != 2 || e.Node != "b" || time.Since(e.At) > time.Minute || time.Since(e.At) < 0 {
		t.Fatalf("%+v", e)
	}
}

// testCommand is a /bin/sh -c script with exactly the given environment, as a node's
// worker would start it.
func testCommand(t *testing.T, script string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}

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
