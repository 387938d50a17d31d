package worker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Each running command's process group is recorded in the data directory until its
// attempt ends. A process of the node that starts on the same data directory kills the
// groups its predecessor left (a predecessor that died without its guard killing them,
// e.g. the guard itself was killed) before it takes work.
//
// The records are kept in one file per slot of the worker (DATA_DIR/groups/N, N below
// the most attempts this process ran at once), written over in place: a record is begun
// when the command starts and blanked when its attempt ends. A file per attempt, created
// and deleted, would cost every attempt an inode, and on an ext4 without a journal every
// inode freed in the last minute is stepped over by each later creation (it also slowed
// the output copies made alongside the runs).

// groupRecordSize is the length of a slot's record: "PGID START RUN.ATTEMPT", padded with
// spaces to a fixed length so that a record is always written over whole.
const groupRecordSize = 96

// groupSlots hands out the slots of the running commands' records.
type groupSlots struct {
	mu   sync.Mutex
	free []int
	next int
}

// take returns a slot no running attempt holds.
func (g *groupSlots) take() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.free); n > 0 {
		i := g.free[n-1]
		g.free = g.free[:n-1]
		return i
	}
	g.next++
	return g.next - 1
}

// put gives a slot back.
func (g *groupSlots) put(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free = append(g.free, i)
}

func (w *Worker) groupsDir() string { return filepath.Join(w.p.DataDir, "groups") }

func (w *Worker) groupFile(slot int) string {
	return filepath.Join(w.groupsDir(), strconv.Itoa(slot))
}

// groupRecord is slot's record of pgid running an attempt of run: its leader's pid and
// start time (so a later process can tell the same leader from a new process that reuses
// its pid); pgid 0 is the blank record of a free slot.
func groupRecord(pgid int, run int64, attempt int) []byte {
	b := bytes.Repeat([]byte{' '}, groupRecordSize)
	b[len(b)-1] = '\n'
	if pgid > 0 {
		copy(b, fmt.Sprintf("%d %s %d.%d", pgid, procStart(pgid), run, attempt))
	}
	return b
}

// recordGroup notes in slot that pgid runs the attempt.
func (w *Worker) recordGroup(slot int, run int64, attempt, pgid int) {
	if err := w.writeGroup(slot, groupRecord(pgid, run, attempt)); err != nil {
		w.p.Log.Warn("cannot record a command's process group", "run", run, "err", err)
	}
}

// forgetGroup blanks slot's record once its attempt has ended.
func (w *Worker) forgetGroup(slot int, run int64) {
	if err := w.writeGroup(slot, groupRecord(0, 0, 0)); err != nil {
		w.p.Log.Warn("cannot forget a command's process group", "run", run, "err", err)
	}
}

func (w *Worker) writeGroup(slot int, rec []byte) error {
	if w.p.DataDir == "" {
		return nil // no data directory: nothing is recorded
	}
	f, err := os.OpenFile(w.groupFile(slot), os.O_WRONLY|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) { // the directory is made when missing, not checked every time
		if err := os.MkdirAll(w.groupsDir(), 0o700); err != nil {
			return err
		}
		f, err = os.OpenFile(w.groupFile(slot), os.O_WRONLY|os.O_CREATE, 0o600)
	}
	if err != nil {
		return err
	}
	_, err = f.WriteAt(rec, 0)
	return errors.Join(err, f.Close())
}

// KillLeftovers kills the process groups recorded by an earlier process of this data
// directory whose attempts never ended, and forgets them.
func (w *Worker) KillLeftovers() error {
	if w.p.DataDir == "" {
		return nil
	}
	entries, err := os.ReadDir(w.groupsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read process groups: %w", err)
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(w.groupsDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			// A free slot, or the previous process died while writing it: nothing to
			// kill, just forget it.
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		pgid, _ := strconv.Atoi(f[0])
		started, which := "", e.Name() // a file per attempt, RUN.ATTEMPT, before 0.8.0
		if len(f) > 1 {
			started = f[1]
		}
		if len(f) > 2 {
			which = f[2]
		}
		if pgid > 1 && leftover(pgid, started) {
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
				w.p.Log.Warn(fmt.Sprintf("killed process group %d left running by this node's previous process (attempt %s)", pgid, which))
			}
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leftover reports whether group pgid may still be the recorded one. While any member of
// a group lives, Linux hands its number to no new process; so either the leader is the
// one recorded (same start time), or the leader is gone and the members left are the
// command's.
func leftover(pgid int, started string) bool {
	now := procStart(pgid)
	return now == "" || now == started
}

// procStart is the start time of process pid (in clock ticks since boot), "" when no
// such process exists.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name, in parentheses, may hold spaces: fields count from its end.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19] // field 22 of stat: starttime
}
