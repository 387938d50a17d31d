package history

import (
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// at returns the builder's occurrence i.
func (b *histBuilder) at(i int) time.Time { return b.t0.Add(time.Duration(i) * step) }

// late makes run r's creation (the plan's instant) d after its scheduled time.
func late(r *wire.Run, d time.Duration) { r.CreatedAt = r.ScheduledAt.Add(d) }

// missedAt adds a missed record of occurrences i..j created at c.
func (b *histBuilder) missedAt(i, j int, c time.Time) *wire.Run {
	b.missed(i, j)
	r := &b.runs[len(b.runs)-1]
	r.CreatedAt, r.Epoch = c, 0
	return r
}

func TestCheckPolicy(t *testing.T) {
	const grace = time.Second
	cases := []struct {
		name   string
		policy Policy
		build  func(b *histBuilder)
		want   string
	}{
		{"skip: late times recorded as missed, the on-time one fired", Policy{Misfire: "skip", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			now := b.at(10)
			b.missedAt(1, 5, now) // 1s late and more
			for i := 6; i <= 10; i++ {
				late(b.run(i, "b", 2), now.Sub(b.at(i)))
			}
		}, ""},
		{"skip: a late time fired", Policy{Misfire: "skip", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			late(b.run(1, "b", 2), 2*time.Second)
		}, "misfire"},
		{"a time recorded as missed that was within the grace", Policy{Misfire: "skip", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			b.missedAt(1, 2, b.at(2).Add(500*time.Millisecond))
			b.run(3, "b", 2)
		}, "misfire"},
		{"run-all: late times fired within the window, older ones missed", Policy{Misfire: "run-all", Grace: grace, Window: 3 * time.Second}, func(b *histBuilder) {
			b.run(0, "a", 1)
			now := b.at(30)
			b.missedAt(1, 14, now) // 3.2s late and more
			for i := 15; i <= 30; i++ {
				late(b.run(i, "b", 2), now.Sub(b.at(i)))
			}
		}, ""},
		{"run-all: a time missed within the window", Policy{Misfire: "run-all", Grace: grace, Window: 3 * time.Second}, func(b *histBuilder) {
			b.run(0, "a", 1)
			b.missedAt(1, 1, b.at(1).Add(2*time.Second))
			b.run(2, "b", 2)
		}, "misfire"},
		{"run-all: a time fired beyond the window", Policy{Misfire: "run-all", Grace: grace, Window: 3 * time.Second}, func(b *histBuilder) {
			late(b.run(0, "a", 1), 4*time.Second)
		}, "misfire"},
		{"run-once: the latest misfired time fired with the record of the rest", Policy{Misfire: "run-once", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			now := b.at(20)
			b.missedAt(1, 14, now)
			late(b.run(15, "b", 2), now.Sub(b.at(15))) // 1.0s late: the latest misfired
			for i := 16; i <= 20; i++ {
				late(b.run(i, "b", 2), now.Sub(b.at(i)))
			}
		}, ""},
		{"run-once: a missed record with nothing fired after it", Policy{Misfire: "run-once", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			b.missedAt(1, 14, b.at(20))
			b.run(15, "b", 2)
		}, "misfire"},
		{"run-once: two misfired times fired", Policy{Misfire: "run-once", Grace: grace}, func(b *histBuilder) {
			b.run(0, "a", 1)
			now := b.at(20)
			late(b.run(1, "b", 2), now.Sub(b.at(1)))
			late(b.run(2, "b", 2), now.Sub(b.at(2)))
		}, "misfire,misfire"},
		{"a run skipped for overlap under allow", Policy{Misfire: "run-all", Grace: grace, Overlap: "allow"}, func(b *histBuilder) {
			r := b.run(0, "a", 1)
			r.State, r.Reason = "skipped", "overlap forbid: run 0 is still running"
			b.execs = nil
		}, "overlap"},
		{"a run replaced under forbid", Policy{Misfire: "run-all", Grace: grace, Overlap: "forbid"}, func(b *histBuilder) {
			r := b.run(0, "a", 1)
			r.State, r.Reason = "canceled", "replaced by a newer run"
		}, "overlap"},
		{"skipped under forbid and replaced under replace are fine", Policy{Misfire: "run-all", Grace: grace, Overlap: "forbid"}, func(b *histBuilder) {
			r := b.run(0, "a", 1)
			r.State, r.Reason = "skipped", "overlap forbid: run 0 is still running"
			b.execs = nil
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newHist()
			tc.build(b)
			rep := Check(Job{Runs: b.runs, Execs: b.execs, Step: step, Policy: &tc.policy})
			if got := rules(rep); got != tc.want {
				t.Fatalf("violations %q, want %q\n%v", got, tc.want, rep.Err())
			}
		})
	}
}

func TestCheckSightings(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *histBuilder, h *Job)
		want  string
	}{
		{"a run seen queued, assigned, running, then final", func(b *histBuilder, h *Job) {
			r := *b.run(0, "a", 2)
			seen := r
			seen.State, seen.Node, seen.Attempt, seen.Epoch = "queued", "", 0, 1
			h.Sightings = append(h.Sightings, Sighting{At: b.t0, Run: seen})
			seen.State, seen.Node, seen.Attempt, seen.Epoch = "running", "a", 1, 2
			h.Sightings = append(h.Sightings, Sighting{At: b.t0.Add(time.Second), Run: seen})
			h.Sightings = append(h.Sightings, Sighting{At: b.t0.Add(2 * time.Second), Run: r})
			h.EpochStarts = []EpochStart{{Epoch: 2, Node: "b", At: b.t0.Add(500 * time.Millisecond)}}
		}, ""},
		{"a final run that changed: a second completion", func(b *histBuilder, h *Job) {
			r := b.run(0, "a", 1)
			seen := *r
			seen.State, seen.Node = "failed", "b"
			h.Sightings = append(h.Sightings, Sighting{At: b.t0, Run: seen})
		}, "completions"},
		{"an epoch that went back", func(b *histBuilder, h *Job) {
			r := b.run(0, "a", 1)
			seen := *r
			seen.State, seen.Epoch = "assigned", 3
			h.Sightings = append(h.Sightings, Sighting{At: b.t0, Run: seen})
		}, "epoch-back"},
		{"an assignment under an epoch already superseded", func(b *histBuilder, h *Job) {
			r := b.run(0, "a", 2)
			seen := *r
			seen.State, seen.Epoch, seen.Node = "queued", 1, ""
			h.Sightings = append(h.Sightings, Sighting{At: b.t0.Add(time.Second), Run: seen})
			h.EpochStarts = []EpochStart{{Epoch: 3, Node: "c", At: b.t0.Add(500 * time.Millisecond)}}
		}, "superseded"},
		{"lease epochs that went back", func(b *histBuilder, h *Job) {
			b.run(0, "a", 1)
			h.LeaseEpochs = []LeaseSighting{{At: b.t0, Epoch: 4, Node: "a"}, {At: b.t0.Add(time.Second), Epoch: 3, Node: "b"}}
		}, "lease-epoch"},
		{"an epoch recorded after a newer one began is no split brain", func(b *histBuilder, h *Job) {
			b.run(0, "a", 1)
			h.EpochStarts = []EpochStart{{Epoch: 2, Node: "b", At: b.t0.Add(-time.Second)}, {Epoch: 1, Node: "a", At: b.t0.Add(-500 * time.Millisecond)}}
			b.runs[0].Epoch = 2
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newHist()
			h := Job{Step: step}
			tc.build(b, &h)
			h.Runs, h.Execs = b.runs, b.execs
			rep := Check(h)
			if got := rules(rep); got != tc.want {
				t.Fatalf("violations %q, want %q\n%v", got, tc.want, rep.Err())
			}
		})
	}
}
