package history

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Exec is one line of an execution log: a run's attempt began executing on a node. The
// log lives outside the repository, written by the job's own command, so it witnesses
// what really ran whatever the repository says.
type Exec struct {
	Run     int64
	Attempt int
	Node    string
	At      time.Time
	Line    int // line number in the log, from 1
	PID     int // the execution's shell, for a watched job (chaos.WatchedExecScript); else 0
}

// Overlap is a line a watched execution wrote when it began: an earlier attempt of its
// own run was still alive (its shell process existed, not a zombie).
type Overlap struct {
	Run     int64
	Attempt int // the attempt that began
	Node    string
	At      time.Time
	Alive   int // the earlier attempt found alive
	Line    int
}

// ParseExecLog parses an execution log, as chaos.ExecScript and chaos.WatchedExecScript
// write it: "RUNID ATTEMPT NODE UNIXNANO" per execution, with "pid=N" after it for a
// watched job's, and overlap lines ending "alive=K". Lines are numbered from 1; the
// first malformed one is an error that names it.
func ParseExecLog(r io.Reader) ([]Exec, []Overlap, error) {
	var out []Exec
	var overlaps []Overlap
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 4 && len(f) != 5 {
			return nil, nil, fmt.Errorf("parse execution log: line %d: want 4 or 5 fields, got %q", n, sc.Text())
		}
		run, err1 := strconv.ParseInt(f[0], 10, 64)
		attempt, err2 := strconv.Atoi(f[1])
		nanos, err3 := strconv.ParseInt(f[3], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, nil, fmt.Errorf("parse execution log: line %d: %w", n, err)
		}
		e := Exec{Run: run, Attempt: attempt, Node: f[2], At: time.Unix(0, nanos), Line: n}
		if len(f) == 5 {
			key, val, _ := strings.Cut(f[4], "=")
			k, err := strconv.Atoi(val)
			switch {
			case err != nil || (key != "pid" && key != "alive"):
				return nil, nil, fmt.Errorf("parse execution log: line %d: want pid=N or alive=N, got %q", n, f[4])
			case key == "alive":
				overlaps = append(overlaps, Overlap{Run: run, Attempt: attempt, Node: f[2], At: e.At, Alive: k, Line: n})
				continue
			}
			e.PID = k
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("parse execution log: %w", err)
	}
	return out, overlaps, nil
}
