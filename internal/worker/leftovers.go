package worker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Each running command's process group is recorded in the data directory until its
// attempt ends. A process of the node that starts on the same data directory kills the
// groups its predecessor left (a predecessor that died without its guard killing them,
// e.g. the guard itself was killed) before it takes work.

func (w *Worker) groupsDir() string { return filepath.Join(w.p.DataDir, "groups") }

func (w *Worker) groupFile(run int64, attempt int) string {
	return filepath.Join(w.groupsDir(), fmt.Sprintf("%d.%d", run, attempt))
}

// recordGroup notes that pgid runs the attempt: its leader's pid and start time (so a
// later process can tell the same leader from a new process that reuses its pid).
func (w *Worker) recordGroup(run int64, attempt, pgid int) {
	if w.p.DataDir == "" {
		return
	}
	if err := os.MkdirAll(w.groupsDir(), 0o700); err != nil {
		w.p.Log.Warn("cannot record a command's process group", "run", run, "err", err)
		return
	}
	rec := fmt.Sprintf("%d %s\n", pgid, procStart(pgid))
	if err := os.WriteFile(w.groupFile(run, attempt), []byte(rec), 0o600); err != nil {
		w.p.Log.Warn("cannot record a command's process group", "run", run, "err", err)
	}
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
			// The previous process died while writing it: nothing to kill, just forget it.
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		pgid, _ := strconv.Atoi(f[0])
		started := ""
		if len(f) > 1 {
			started = f[1]
		}
		if pgid > 1 && leftover(pgid, started) {
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
				w.p.Log.Warn(fmt.Sprintf("killed process group %d left running by this node's previous process (attempt %s)", pgid, e.Name()))
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
