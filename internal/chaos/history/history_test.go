package history

import (
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// histBuilder makes synthetic histories of a 200ms @every job.
type histBuilder struct {
	t0    time.Time
	runs  []wire.Run
	execs []Exec
	all   bool // the epoch starts are all of them
}

const step = 200 * time.Millisecond

func newHist() *histBuilder {
	return &histBuilder{t0: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

// run adds a succeeded scheduled run of occurrence i, executed once on node.
func (b *histBuilder) run(i int, node string, epoch int64) *wire.Run {
	at := b.t0.Add(time.Duration(i) * step)
	r := wire.Run{ID: int64(len(b.runs) + 1), Job: "tick", State: "succeeded", Attempt: 1, MaxAttempts: 1, Node: node,
		Trigger: "schedule", ScheduledAt: &at, Occurrences: 1, CreatedAt: at.Add(5 * time.Millisecond), Epoch: epoch}
	b.runs = append(b.runs, r)
	b.execs = append(b.execs, Exec{Run: r.ID, Attempt: 1, Node: node, At: r.CreatedAt, Line: len(b.execs) + 1})
	return &b.runs[len(b.runs)-1]
}

// missed adds a missed record of occurrences i..j.
func (b *histBuilder) missed(i, j int) {
	from, until := b.t0.Add(time.Duration(i)*step), b.t0.Add(time.Duration(j)*step)
	b.runs = append(b.runs, wire.Run{ID: int64(len(b.runs) + 1), Job: "tick", State: "missed", Trigger: "schedule",
		ScheduledAt: &from, ScheduledUntil: &until, Occurrences: j - i + 1, CreatedAt: until.Add(time.Second), Epoch: 2})
}

func (b *histBuilder) check(starts ...EpochStart) Report {
	return Check(Job{Runs: b.runs, Execs: b.execs, Step: step, EpochStarts: starts, AllEpochs: b.all})
}

func rules(r Report) string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Rule)
	}
	return strings.Join(out, ",")
}

func TestCheckAcceptsACleanHistory(t *testing.T) {
	b := newHist()
	for i := range 5 {
		b.run(i, "a", 1)
	}
	b.missed(5, 9)
	for i := 10; i < 15; i++ {
		b.run(i, "b", 2)
	}
	rep := b.check(EpochStart{Epoch: 1, Node: "a", At: b.t0.Add(-time.Second)}, EpochStart{Epoch: 2, Node: "b", At: b.t0.Add(1900 * time.Millisecond)})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Occurrences != 15 || rep.Runs != 11 {
		t.Fatalf("report: %s", rep.Summary())
	}
}

func TestCheckFindsEachViolation(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *histBuilder) []EpochStart
		want  string
	}{
		{"a scheduled time twice", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.run(1, "a", 1)
			b.run(1, "b", 2)
			b.run(2, "b", 2)
			return nil
		}, "duplicate"},
		{"a time inside a missed range fired too", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.missed(1, 3)
			b.run(2, "b", 2)
			b.run(4, "b", 2)
			return nil
		}, "duplicate"},
		{"a scheduled time lost", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.run(1, "a", 1)
			b.run(4, "b", 2)
			return nil
		}, "lost"},
		{"a run left running", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1).State = "running"
			return nil
		}, "not-final"},
		{"an attempt executed twice", func(b *histBuilder) []EpochStart {
			r := b.run(0, "a", 1)
			r.Attempt = 2
			b.execs = append(b.execs, Exec{Run: r.ID, Attempt: 1, Node: "b", Line: 9})
			return nil
		}, "executions,unwitnessed"},
		{"more executions than attempts", func(b *histBuilder) []EpochStart {
			r := b.run(0, "a", 1)
			b.execs = append(b.execs, Exec{Run: r.ID, Attempt: 2, Node: "b", Line: 9})
			return nil
		}, "executions,executions"},
		{"a record of missed times executed", func(b *histBuilder) []EpochStart {
			b.missed(0, 2)
			b.execs = append(b.execs, Exec{Run: 1, Attempt: 1, Node: "a", Line: 1})
			return nil
		}, "executions"},
		{"a success without an execution", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.execs = nil
			return nil
		}, "unwitnessed"},
		{"a deposed primary fired after the takeover", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.run(1, "b", 2)
			b.run(2, "a", 1)
			return []EpochStart{{Epoch: 2, Node: "b", At: b.t0.Add(100 * time.Millisecond)}}
		}, "stale-epoch"},
		{"two primaries in one epoch", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			return []EpochStart{{Epoch: 1, Node: "a", At: b.t0.Add(-time.Second)}, {Epoch: 1, Node: "b", At: b.t0}}
		}, "epochs"},
		{"the same node again in its epoch is no split brain", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			return []EpochStart{{Epoch: 1, Node: "a", At: b.t0.Add(-time.Second)}, {Epoch: 1, Node: "a", At: b.t0}}
		}, ""},
		{"an epoch no primary.changed records", func(b *histBuilder) []EpochStart {
			b.all = true
			b.run(0, "a", 1)
			b.run(1, "b", 2)
			return []EpochStart{{Epoch: 1, Node: "a", At: b.t0.Add(-time.Second)}}
		}, "unrecorded-epoch"},
		{"an unlisted epoch, when the starts are not all of them", func(b *histBuilder) []EpochStart {
			b.run(0, "a", 1)
			b.run(1, "b", 2)
			return []EpochStart{{Epoch: 1, Node: "a", At: b.t0.Add(-time.Second)}}
		}, ""},
		{"a record whose count disagrees", func(b *histBuilder) []EpochStart {
			b.missed(0, 3)
			b.runs[0].Occurrences = 7
			return nil
		}, "occurrences"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newHist()
			starts := tc.build(b)
			rep := b.check(starts...)
			if got := rules(rep); got != tc.want {
				t.Fatalf("violations %q, want %q\n%v", got, tc.want, rep.Err())
			}
			if tc.want == "" || tc.want == "epochs" {
				return // a split brain is about events, not runs
			}
			// The report shows the runs around each violation.
			if msg := rep.Err().Error(); !strings.Contains(msg, "run 1 ") {
				t.Fatalf("report does not show the runs around the violation:\n%s", msg)
			}
		})
	}
}

func TestEpochStartsFromEvents(t *testing.T) {
	at := time.Now()
	evs := []wire.Event{
		{Type: "primary.changed", Node: "b", At: at, Data: map[string]any{"epoch": float64(3)}},
		{Type: "node.joined", Node: "c", At: at},
		{Type: "primary.changed", Node: "a", At: at.Add(-time.Second), Data: map[string]any{"epoch": float64(2)}},
	}
	got := EpochStartsFrom(evs)
	if len(got) != 2 || got[0].Epoch != 2 || got[1].Epoch != 3 || got[1].Node != "b" {
		t.Fatalf("%+v", got)
	}
}
