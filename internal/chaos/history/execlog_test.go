package history

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// An execution log's lines: executions, a watched one's pid, an overlap; a malformed line
// is an error naming it.
func TestParseExecLog(t *testing.T) {
	t.Parallel()
	log := "7 1 a 1700000000000000001\n" +
		"7 2 b 1700000000000000002 pid=41\n" +
		"7 3 c 1700000000000000003 alive=2\n"
	execs, overlaps, err := ParseExecLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []Exec{
		{Run: 7, Attempt: 1, Node: "a", At: time.Unix(0, 1700000000000000001), Line: 1},
		{Run: 7, Attempt: 2, Node: "b", At: time.Unix(0, 1700000000000000002), Line: 2, PID: 41},
	}
	if fmt.Sprint(execs) != fmt.Sprint(want) {
		t.Fatalf("executions %+v, want %+v", execs, want)
	}
	if len(overlaps) != 1 || overlaps[0] != (Overlap{Run: 7, Attempt: 3, Node: "c", At: time.Unix(0, 1700000000000000003), Alive: 2, Line: 3}) {
		t.Fatalf("overlaps %+v, want attempt 3 of run 7 finding attempt 2 alive on line 3", overlaps)
	}
	if execs, overlaps, err := ParseExecLog(strings.NewReader("")); err != nil || execs != nil || overlaps != nil {
		t.Fatalf("an empty log: %v %v %v", execs, overlaps, err)
	}
	for _, bad := range []string{"7 1 a", "7 1 a 1 pid=1 x", "x 1 a 1", "7 1 a 1 pid=x", "7 1 a 1 ppid=1"} {
		_, _, err := ParseExecLog(strings.NewReader(log + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("%q: error %v, want one naming line 4", bad, err)
		}
	}
}

// Whatever the bytes, ParseExecLog returns lines it numbered within the log, and what
// it accepts it reads back the same once written out again.
func FuzzParseExecLog(f *testing.F) {
	f.Add("7 1 a 1700000000000000001\n7 2 b 1700000000000000002 pid=41\n7 3 c 1700000000000000003 alive=2\n")
	f.Add("1 1 a 0")
	f.Add("  -1\t0 \x00 9223372036854775807 alive=-3\n\n")
	f.Fuzz(func(t *testing.T, log string) {
		execs, overlaps, err := ParseExecLog(strings.NewReader(log))
		if err != nil {
			return
		}
		lines := strings.Count(log, "\n") + 1
		var again strings.Builder
		for _, e := range execs {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("execution on line %d of %d", e.Line, lines)
			}
			fmt.Fprintf(&again, "%d %d %s %d", e.Run, e.Attempt, e.Node, e.At.UnixNano())
			if e.PID != 0 {
				fmt.Fprintf(&again, " pid=%d", e.PID)
			}
			again.WriteString("\n")
		}
		for _, o := range overlaps {
			if o.Line < 1 || o.Line > lines {
				t.Fatalf("overlap on line %d of %d", o.Line, lines)
			}
			fmt.Fprintf(&again, "%d %d %s %d alive=%d\n", o.Run, o.Attempt, o.Node, o.At.UnixNano(), o.Alive)
		}
		execs2, overlaps2, err := ParseExecLog(strings.NewReader(again.String()))
		if err != nil {
			t.Fatalf("written out again: %v\n%s", err, again.String())
		}
		if len(execs2) != len(execs) || len(overlaps2) != len(overlaps) {
			t.Fatalf("read back %d executions and %d overlaps, want %d and %d", len(execs2), len(overlaps2), len(execs), len(overlaps))
		}
		for i := range execs {
			a, b := execs[i], execs2[i]
			if a.Run != b.Run || a.Attempt != b.Attempt || a.Node != b.Node || !a.At.Equal(b.At) || a.PID != b.PID {
				t.Fatalf("execution %+v read back as %+v", a, b)
			}
		}
	})
}
