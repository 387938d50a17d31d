package history

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// SlotTerm is when a node began to hold a scheduler slot under an epoch: the time of its
// slot.taken event, which the node records in the transaction that takes the slot's lease.
type SlotTerm struct {
	Slot  int
	Epoch int64
	Node  string
	At    time.Time
}

// SlotTermsFrom picks the slot terms out of events, oldest first.
func SlotTermsFrom(evs []wire.Event) []SlotTerm {
	var out []SlotTerm
	for _, e := range evs {
		if e.Type != "slot.taken" {
			continue
		}
		slot, ok1 := number(e.Data["slot"])
		epoch, ok2 := number(e.Data["epoch"])
		if !ok1 || !ok2 {
			continue
		}
		out = append(out, SlotTerm{Slot: int(slot), Epoch: epoch, Node: e.Node, At: e.At})
	}
	slices.SortFunc(out, func(a, b SlotTerm) int { return a.At.Compare(b.At) })
	return out
}

func number(v any) (int64, bool) {
	switch v := v.(type) {
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// firedEpoch is the epoch a scheduled run was fired under, if the history shows it: the
// epoch it carried before its first assignment (which writes the primary's epoch over
// it). A run given back before it started (its node stopped or was lost) is queued
// again with attempt 0 but the assigning primary's epoch, and a reason saying why: such
// a sighting shows nothing of the firing. ok is false when no sighting or final state
// shows the run unassigned, as fired, with an epoch.
func firedEpoch(r wire.Run, seen []Sighting) (epoch int64, ok bool) {
	asFired := func(r wire.Run) bool { return r.Attempt == 0 && r.Epoch > 0 && r.Reason == "" }
	for _, s := range seen {
		if asFired(s.Run) {
			return s.Run.Epoch, true
		}
	}
	if asFired(r) {
		return r.Epoch, true
	}
	return 0, false
}

// checkSlots judges a history fired in scheduler slots (Job.Slots > 1), where each
// schedule belongs to slot ScheduleID mod Slots and its firing is fenced by that slot's
// lease:
//
//   - slot-epochs: one epoch of a slot was taken by two nodes (a split brain of the slot);
//   - slot-stale: a run fired under an epoch of its slot below one whose holder had taken
//     the slot before the run was created (a deposed slot holder's firing was accepted);
//   - slot-once: a scheduled time of one schedule appears in two records, whoever fired
//     them (two slot holders, or one twice); the holders of the epochs are named where
//     the history shows them;
//   - slot-lost: between a schedule's first and last scheduled time a step has neither
//     run nor record (what the misfire policy decides is a record, so a loss beyond it);
//     the slot's holders around the gap are named.
//
// Runs without a schedule id (on-demand) are not judged. It returns how many runs the
// history shows with the epoch they were fired under.
func checkSlots(h Job, runs []wire.Run, add func(string, string, []wire.Run)) (fired int) {
	if h.Slots <= 1 {
		return 0
	}
	type key struct {
		slot  int
		epoch int64
	}
	holder := map[key]SlotTerm{}
	for _, t := range h.SlotTerms {
		k := key{t.Slot, t.Epoch}
		if prev, ok := holder[k]; ok && prev.Node != t.Node {
			add("slot-epochs", fmt.Sprintf("%s took slot %d in epoch %d at %s, and %s in the same epoch at %s",
				prev.Node, t.Slot, t.Epoch, prev.At.Format("15:04:05.000000"), t.Node, t.At.Format("15:04:05.000000")), nil)
			continue
		}
		holder[k] = t
	}
	who := func(slot int, epoch int64) string {
		if t, ok := holder[key{slot, epoch}]; ok {
			return fmt.Sprintf("%s (slot %d epoch %d)", t.Node, slot, epoch)
		}
		return fmt.Sprintf("slot %d epoch %d", slot, epoch)
	}
	seen := map[int64][]Sighting{}
	for _, s := range h.Sightings {
		seen[s.Run.ID] = append(seen[s.Run.ID], s)
	}
	bySchedule := map[int64][]wire.Run{}
	for _, r := range runs {
		if r.ScheduleID == 0 || r.ScheduledAt == nil {
			continue
		}
		slot := int(r.ScheduleID % int64(h.Slots))
		bySchedule[r.ScheduleID] = append(bySchedule[r.ScheduleID], r)
		epoch, ok := firedEpoch(r, seen[r.ID])
		if !ok {
			continue
		}
		fired++
		for _, t := range h.SlotTerms {
			if t.Slot == slot && t.Epoch > epoch && t.At.Before(r.CreatedAt.Add(-sightingSlack)) {
				add("slot-stale", fmt.Sprintf("run %d of schedule %d (slot %d) was fired under epoch %d at %s, after %s had taken the slot at %s: a deposed slot holder's firing was accepted",
					r.ID, r.ScheduleID, slot, epoch, r.CreatedAt.Format("15:04:05.000000"), who(slot, t.Epoch), t.At.Format("15:04:05.000000")), []wire.Run{r})
				break
			}
		}
	}
	ids := slices.Sorted(maps.Keys(bySchedule))
	for _, id := range ids {
		checkSlotSchedule(h, id, bySchedule[id], seen, who, add)
	}
	return fired
}

// checkSlotSchedule judges one schedule's records: each scheduled time once, none lost.
func checkSlotSchedule(h Job, id int64, rs []wire.Run, seen map[int64][]Sighting, who func(int, int64) string,
	add func(string, string, []wire.Run)) {
	if h.Step <= 0 {
		return
	}
	slot := int(id % int64(h.Slots))
	firer := func(r wire.Run) string {
		if e, ok := firedEpoch(r, seen[r.ID]); ok {
			return who(slot, e)
		}
		if r.State == "missed" || r.State == "skipped" {
			return "a record"
		}
		return "an unseen epoch"
	}
	var times []scheduledTime
	for _, r := range rs {
		first, last, _ := Span(r) // rs are scheduled runs
		for at := first; !at.After(last); at = at.Add(h.Step) {
			times = append(times, scheduledTime{at: at, run: r})
		}
	}
	slices.SortStableFunc(times, func(a, b scheduledTime) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.run.ID, b.run.ID))
	})
	for i := 1; i < len(times); i++ {
		prev, cur := times[i-1], times[i]
		switch gap := cur.at.Sub(prev.at); {
		case gap == 0:
			add("slot-once", fmt.Sprintf("schedule %d (slot %d) fired %s twice: run %d by %s and run %d by %s",
				id, slot, cur.at.Format("15:04:05.000"), prev.run.ID, firer(prev.run), cur.run.ID, firer(cur.run)), []wire.Run{prev.run, cur.run})
		case gap > h.Step:
			add("slot-lost", fmt.Sprintf("schedule %d (slot %d) has neither run nor record for %d scheduled times between %s (run %d) and %s (run %d); the slot's holders then: %s",
				id, slot, int(gap/h.Step)-1, prev.at.Format("15:04:05.000"), prev.run.ID, cur.at.Format("15:04:05.000"), cur.run.ID,
				holdersBetween(h.SlotTerms, slot, prev.at, cur.at)), []wire.Run{prev.run, cur.run})
		}
	}
}

// holdersBetween names the term of slot in force at from and those that began up to to.
func holdersBetween(terms []SlotTerm, slot int, from, to time.Time) string {
	var out []string
	for _, t := range terms {
		switch {
		case t.Slot != slot || t.At.After(to):
		case !t.At.After(from):
			out = []string{} // a later term at from replaces an earlier one
			fallthrough
		default:
			out = append(out, fmt.Sprintf("%s epoch %d from %s", t.Node, t.Epoch, t.At.Format("15:04:05.000")))
		}
	}
	if len(out) == 0 {
		return "none known"
	}
	return strings.Join(out, ", ")
}
