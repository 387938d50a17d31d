package history

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// Sighting is a run as the harness read it while the cluster ran.
type Sighting struct {
	// At is when the harness sent the request that returned Run: the run was read at
	// or after it.
	At  time.Time
	Run wire.Run
}

// LeaseSighting is the primary lease's epoch as the harness read it (tandem status).
type LeaseSighting struct {
	At    time.Time
	Epoch int64
	Node  string // the node that answered
}

// sightingSlack allows for the nodes' corrected clocks being a little off the harness's:
// an epoch start is trusted to be before a sighting only by more than this.
const sightingSlack = 50 * time.Millisecond

// checkSightings judges each run's sightings, in order, ending with its settled state:
//
//   - completions: a run seen final never changes again (a second completion accepted,
//     from a stale attempt or twice from one, would change its state, attempt, node,
//     finish time or exit code);
//   - epoch-back: a run's epoch never goes down (a role-dependent write from an older
//     epoch accepted after one from a newer); with scheduler slots, a scheduled run's
//     epoch before its first assignment is its slot's, so the assignment may lower it;
//   - superseded: a run's epoch that changed after a sighting (an assignment, made after
//     that sighting was read) is not older than an epoch that had begun before the
//     sighting: the write came from a holder whose lease had been superseded;
//   - lease-epoch: the lease epochs the harness read never go down.
func checkSightings(h Job, settled []wire.Run) []Violation {
	var out []Violation
	add := func(rule, detail string, at time.Time, around ...wire.Run) {
		out = append(out, Violation{Rule: rule, Detail: detail, Around: around, At: at})
	}
	byRun := map[int64][]Sighting{}
	for _, s := range h.Sightings {
		byRun[s.Run.ID] = append(byRun[s.Run.ID], s)
	}
	for _, r := range settled {
		if ss, ok := byRun[r.ID]; ok {
			// The settled state is the last sighting; its time is never compared.
			byRun[r.ID] = append(ss, Sighting{At: ss[len(ss)-1].At, Run: r})
		}
	}
	ids := slices.Sorted(maps.Keys(byRun))
	for _, id := range ids {
		ss := byRun[id]
		for i := 1; i < len(ss); i++ {
			a, b := ss[i-1], ss[i]
			if Final(a.Run.State) && CompletionChanged(a.Run, b.Run) {
				add("completions", fmt.Sprintf("run %d was seen %s at %s and later %s: a second completion was accepted",
					id, completion(a.Run), a.At.Format("15:04:05.000"), completion(b.Run)), a.At, a.Run, b.Run)
			}
			slotEpoch := h.Slots > 1 && a.Run.ScheduledAt != nil && a.Run.Attempt == 0 // its slot's, not the primary's
			if b.Run.Epoch < a.Run.Epoch && !slotEpoch {
				add("epoch-back", fmt.Sprintf("run %d had epoch %d at %s and later epoch %d: a write from an older epoch was accepted after one from a newer",
					id, a.Run.Epoch, a.At.Format("15:04:05.000"), b.Run.Epoch), a.At, a.Run, b.Run)
			}
			if b.Run.Epoch == a.Run.Epoch {
				continue
			}
			for _, e := range h.EpochStarts {
				if e.Epoch > b.Run.Epoch && e.At.Before(a.At.Add(-sightingSlack)) {
					add("superseded", fmt.Sprintf("run %d was written under epoch %d after %s, when epoch %d had begun already (%s at %s): a write from a superseded holder was accepted",
						id, b.Run.Epoch, a.At.Format("15:04:05.000"), e.Epoch, e.Node, e.At.Format("15:04:05.000")), a.At, a.Run, b.Run)
					break
				}
			}
		}
	}
	for i := 1; i < len(h.LeaseEpochs); i++ {
		if a, b := h.LeaseEpochs[i-1], h.LeaseEpochs[i]; b.Epoch < a.Epoch {
			add("lease-epoch", fmt.Sprintf("the lease was at epoch %d at %s (read through %s) and later at epoch %d (through %s)",
				a.Epoch, a.At.Format("15:04:05.000"), a.Node, b.Epoch, b.Node), a.At)
		}
	}
	return out
}

// CompletionChanged reports whether b differs from a in what a completion writes.
func CompletionChanged(a, b wire.Run) bool {
	return a.State != b.State || a.Attempt != b.Attempt || a.Node != b.Node ||
		!equalTime(a.FinishedAt, b.FinishedAt) || !equalInt(a.ExitCode, b.ExitCode)
}

func completion(r wire.Run) string {
	s := fmt.Sprintf("%s (attempt %d on %q", r.State, r.Attempt, r.Node)
	if r.FinishedAt != nil {
		s += ", finished " + r.FinishedAt.Format("15:04:05.000000")
	}
	if r.ExitCode != nil {
		s += fmt.Sprintf(", exit %d", *r.ExitCode)
	}
	return s + ")"
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func equalInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
