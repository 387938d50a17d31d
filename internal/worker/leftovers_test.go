package worker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/testutil"
)

// A group file left empty (its process died while writing it) is forgotten, not a
// crash of the next process's start (seen in the soak: kill -9 mid-write).
func TestKillLeftoversForgetsAnEmptyRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := New(Params{Log: slog.New(slog.DiscardHandler), Node: "w1", DataDir: dir, Capacity: 1})
	if err := os.MkdirAll(w.groupsDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.groupsDir(), "7.1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.KillLeftovers(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(w.groupsDir()); len(entries) != 0 {
		t.Fatalf("records left: %v", entries)
	}
}

// Running commands' process groups are recorded in one file per slot, written over in
// place: twenty attempts, two at a time, create two files and delete none (a file per
// attempt cost every attempt an inode, which an ext4 without a journal makes every later
// creation step over for a minute). Each record names its attempt, and an ended
// attempt's record is blank.
func TestGroupRecordsReuseAFilePerSlot(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "c", Command: &job.Command{Argv: []string{"sleep", "0.1"}}})
	w := startWorker(t, st, 2)
	runs := enqueue(t, st, "c", 20)
	files := map[string]uint64{} // name: inode
	var records []string
	testutil.Wait(t, 30*time.Second, "every run to end", func() bool {
		entries, _ := os.ReadDir(w.groupsDir())
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue
			}
			ino := info.Sys().(*syscall.Stat_t).Ino
			if was, ok := files[e.Name()]; ok && was != ino {
				t.Fatalf("group file %s was replaced (inode %d, then %d)", e.Name(), was, ino)
			}
			files[e.Name()] = ino
			if b, err := os.ReadFile(filepath.Join(w.groupsDir(), e.Name())); err == nil {
				records = append(records, string(b))
			}
		}
		load, err := st.RunLoad(context.Background())
		return err == nil && len(load) == 0
	})
	if len(files) == 0 || len(files) > 2 {
		t.Fatalf("group files seen over 20 attempts, 2 at a time: %v; want one per slot", files)
	}
	named := 0
	for _, r := range records {
		if len(r) != groupRecordSize {
			t.Fatalf("record %q: %d bytes, want %d", r, len(r), groupRecordSize)
		}
		if f := strings.Fields(r); len(f) == 3 && strings.HasSuffix(f[2], ".1") {
			named++
		}
	}
	if named == 0 {
		t.Fatalf("no record named its attempt: %q", records)
	}
	for name := range files {
		b, err := os.ReadFile(filepath.Join(w.groupsDir(), name))
		if err != nil || strings.TrimSpace(string(b)) != "" {
			t.Fatalf("group file %s after every attempt ended: %q, %v; want a blank record", name, b, err)
		}
	}
	for _, r := range runs {
		waitState(t, st, r.ID, store.RunSucceeded)
	}
}

// A process of the node that starts on the data directory kills the process group its
// predecessor recorded in a slot, and forgets every record (blank ones too).
func TestKillLeftoversKillsARecordedGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	before := New(Params{Log: slog.New(slog.DiscardHandler), Node: "w1", DataDir: dir, Capacity: 2})
	before.recordGroup(0, 5, 1, cmd.Process.Pid)
	before.recordGroup(1, 6, 1, 1)
	before.forgetGroup(1, 6)

	after := New(Params{Log: slog.New(slog.DiscardHandler), Node: "w1", DataDir: dir, Capacity: 2})
	if err := after.KillLeftovers(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the recorded group's leader ended with %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the recorded group was not killed")
	}
	if entries, _ := os.ReadDir(after.groupsDir()); len(entries) != 0 {
		t.Fatalf("records left: %v", entries)
	}
}
