package history

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// EpochStart is when a primary epoch began: the time of its primary.changed event, which
// the new primary records after its lease write committed.
type EpochStart struct {
	Epoch int64
	Node  string
	At    time.Time
}

// EpochStartsFrom picks the epoch starts out of events, oldest first.
func EpochStartsFrom(evs []wire.Event) []EpochStart {
	var out []EpochStart
	for _, e := range evs {
		if e.Type != "primary.changed" {
			continue
		}
		var epoch int64
		switch v := e.Data["epoch"].(type) {
		case float64:
			epoch = int64(v)
		case int64:
			epoch = v
		default:
			continue
		}
		out = append(out, EpochStart{Epoch: epoch, Node: e.Node, At: e.At})
	}
	slices.SortFunc(out, func(a, b EpochStart) int { return a.At.Compare(b.At) })
	return out
}

// Job is the history of one job that Check judges: every run of the job once the
// cluster settled, its execution log, and the primary epochs' starts, with what else
// the harness saw meanwhile.
type Job struct {
	Runs  []wire.Run
	Execs []Exec
	// Step is the schedule's period (an @every job); records of several occurrences are
	// expanded by it. 0 checks no scheduled times (an on-demand job).
	Step time.Duration
	// EpochStarts, if given, are checked against the runs: a run created after an epoch
	// began was written by that epoch or a later one, never by a deposed primary.
	EpochStarts []EpochStart
	// AllEpochs says EpochStarts lists every epoch of the primary lease (the soak reads
	// them all): then a run carrying an epoch they lack is a violation.
	AllEpochs bool
	// Policy, if given, is the job's misfire and overlap policy: missed records, late
	// firings and skipped or replaced runs are checked against it (needs Step).
	Policy *Policy
	// Sightings are the job's runs as the harness saw them while the cluster ran, in the
	// order seen: they show writes the final state no longer does (a second completion, a
	// role-dependent write that carried an older epoch).
	Sightings []Sighting
	// LeaseEpochs are the primary lease's epochs as the harness read them, in order.
	LeaseEpochs []LeaseSighting
	// Overlaps are the overlap lines of a watched job's log; Faults the faults injected
	// meanwhile; Duration how long each of the job's executions runs. Together they
	// judge the overlap and drain rules (checkFaults).
	Overlaps []Overlap
	Faults   []Fault
	Duration time.Duration
	// Entries, when not 0, is how many [[deliver]] entries (all on success) the job has;
	// Deliveries are its delivery records once they settled, DeliveryAttempts the
	// nodes' deliver.max_attempts, Received the requests the receiver accepted by
	// webhook-id and Unverified those it could not verify. Together they judge the
	// delivery rules (checkDeliveries).
	Entries          int
	Deliveries       []wire.Delivery
	DeliveryAttempts int
	Received         map[string]int
	Unverified       int
	// Kept says the job writes KeptFile (chaos.KeptScript) with copies; Listed is how
	// many outputs each succeeded run lists and Downloads what the cluster served for
	// each once it settled. Together they judge the output durability rule
	// (checkOutputs).
	Kept      bool
	Listed    map[int64]int
	Downloads []Download
	// Slots, when above 1, is the cluster's scheduler.slots: a scheduled run is fired
	// under the epoch of its schedule's slot (ScheduleID mod Slots), which it carries until
	// the primary assigns it. SlotTerms are the slots' holders over time. Together they
	// judge the slot rules (checkSlots).
	Slots     int
	SlotTerms []SlotTerm
	// Notify, if given, is judged by the notifications rule (checkNotifications).
	Notify *Notifications
	// Sync, if given, is a DR site's change log against its source's, judged by
	// CheckSync's rules.
	Sync *Sync
}

// Violation is one broken rule, with the runs around it.
type Violation struct {
	// Rule is one of: duplicate (a scheduled time twice), lost (a scheduled time with
	// neither run nor record), occurrences (a record's count disagrees with its range),
	// unaligned (a time off the @every grid), not-final, executions (more executions than
	// attempts, an attempt executed twice or beyond the run's attempt, an execution of a
	// run that is not in the history or of a missed/skipped record), unwitnessed (a
	// succeeded run whose final attempt left no execution line from its node),
	// stale-epoch (a run created after epoch E began carries an epoch below E), epochs
	// (primary.changed events whose epochs go back, or one epoch on two nodes: a split brain),
	// dead-overlap (an attempt of a run still executing after its node was killed, while a
	// later attempt ran), drain (a run in flight on a node that stopped gracefully was
	// given another attempt), deliveries (a succeeded run without exactly one delivery
	// record per entry, or a record of another run), delivery-final (a record neither
	// delivered nor failed, or failed before its attempts ran out), delivery-unseen (a
	// delivered record the receiver never got, or a request it got of no record),
	// outputs (a succeeded run of the job with copies whose output is not listed, not
	// recorded with its bytes' hash, or not served byte-identical by a live node at the
	// end while a holder of it was left), slot-epochs, slot-stale, slot-once, slot-lost
	// (the scheduler slot rules, see checkSlots), notifications (an event matching a rule
	// without exactly one notice record of it, or a notice of no matching event),
	// unrecorded-epoch (a run's epoch without its primary.changed event), misfire and
	// overlap (the job's policy, see checkPolicy), completions, epoch-back, superseded
	// and lease-epoch (what the sightings show, see checkSightings), and sync-lost,
	// sync-extra, sync-order and sync-mismatch (CheckSync's).
	Rule   string
	Detail string
	Around []wire.Run // the runs around the violation
	// At is about when the broken rule happened (a run's creation or scheduled time, a
	// sighting), to find the faults injected near it; zero if unknown.
	At time.Time
}

// Report is the outcome of Check.
type Report struct {
	Violations  []Violation
	Runs        int // records: runs and missed/skipped entries
	Occurrences int // scheduled times, expanded
	First, Last time.Time
	States      string // e.g. "succeeded=120 missed=1"
	Executions  int
	Duplicates  int // scheduled times that appear more than once (each extra appearance)
	Lost        int // scheduled times with neither run nor record
	// Deliveries counts the delivery records checked (Job.Entries > 0), by state in
	// DeliveryStates; Redelivered counts the webhook-ids the receiver accepted more than once.
	Deliveries     int
	DeliveryStates string
	Redelivered    int
	// Outputs counts the output files downloaded and checked (Job.Kept); Gone those
	// allowed to be missing because every holder was lost.
	Outputs, Gone int
	// With Job.Slots > 1: SlotFired counts the scheduled runs whose firing epoch the
	// history shows (seen before their assignment), which slot-stale judges.
	SlotFired     int
	slots         int
	Notifications int
	// With Job.Sync: Synced counts the changes the DR site applied after its full sync.
	Synced int
	execs  map[int64][]Exec
}

// Summary is one line: what was checked and how many rules broke.
func (r Report) Summary() string {
	s := fmt.Sprintf("%d records (%s), %d executions", r.Runs, r.States, r.Executions)
	if r.Occurrences > 0 {
		s += fmt.Sprintf(", %d scheduled times %s..%s", r.Occurrences, r.First.Format("15:04:05.000"), r.Last.Format("15:04:05.000"))
	}
	if r.slots > 1 {
		s += fmt.Sprintf(", %d slots (%d runs seen with their slot's epoch)", r.slots, r.SlotFired)
	}
	if r.DeliveryStates != "" {
		s += fmt.Sprintf(", %d deliveries (%s; %d accepted more than once)", r.Deliveries, r.DeliveryStates, r.Redelivered)
	}
	if r.Outputs > 0 {
		s += fmt.Sprintf(", %d output files downloaded and checked (%d gone with every holder)", r.Outputs, r.Gone)
	}
	if r.Notifications > 0 {
		s += fmt.Sprintf(", %d notifications", r.Notifications)
	}
	if r.Synced > 0 {
		s += fmt.Sprintf(", %d changes synced to the DR site", r.Synced)
	}
	if len(r.Violations) == 0 {
		return s + ": history OK"
	}
	return s + fmt.Sprintf(": %d violations", len(r.Violations))
}

// Err returns nil if no rule broke, else an error that lists every violation with the
// runs around it and their execution lines.
func (r Report) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history check: %s", r.Summary())
	const most = 20
	for i, v := range r.Violations {
		if i == most {
			fmt.Fprintf(&b, "\n… and %d more", len(r.Violations)-most)
			break
		}
		fmt.Fprintf(&b, "\n[%s] %s", v.Rule, v.Detail)
		for _, run := range v.Around {
			fmt.Fprintf(&b, "\n    %s", FormatRun(run))
			for _, e := range r.execs[run.ID] {
				fmt.Fprintf(&b, "\n        executed: attempt %d on %s at %s (exec log line %d)", e.Attempt, e.Node, e.At.Format("15:04:05.000000"), e.Line)
			}
		}
	}
	return errors.New(b.String())
}

// FormatRun renders a run on one line.
func FormatRun(r wire.Run) string {
	sched := "-"
	if r.ScheduledAt != nil {
		sched = r.ScheduledAt.Format("15:04:05.000")
		if r.ScheduledUntil != nil {
			sched += ".." + r.ScheduledUntil.Format("15:04:05.000")
		}
	}
	s := fmt.Sprintf("run %d %s %s attempt %d/%d node %q epoch %d scheduled %s ×%d created %s",
		r.ID, r.Trigger, r.State, r.Attempt, r.MaxAttempts, r.Node, r.Epoch, sched, r.Occurrences, r.CreatedAt.Format("15:04:05.000"))
	if r.Reason != "" {
		s += fmt.Sprintf(" reason %q", r.Reason)
	}
	return s
}

// Check judges a settled history:
//
//	(a) no scheduled time appears twice (records of several occurrences expanded by Step);
//	(b) from the first to the last scheduled time, every step is a run or a record;
//	(c) every run is final;
//	(d) a run executed at most as often as its attempt count, never twice in one attempt,
//	    never in an attempt beyond its own, and a succeeded run's final attempt executed
//	    on the run's node;
//	(e) no run created after epoch E began carries an epoch below E;
//	(f) with Entries, each succeeded run was delivered as checkDeliveries says;
//	(g) with Kept, each succeeded run's output is served as checkOutputs says;
//	(h) with Slots, each schedule's times were fired once across its slot's holders, none
//	    lost, none by a deposed holder, as checkSlots says;
//	(i) with Notify, each event matching a rule has exactly one notice of it;
//	(j) with Sync, the DR site applied its source's changes as CheckSync says.
func Check(h Job) Report {
	runs := slices.Clone(h.Runs)
	slices.SortFunc(runs, func(a, b wire.Run) int { return cmp.Compare(a.ID, b.ID) })
	rep := Report{Runs: len(runs), States: CountStates(runs), Executions: len(h.Execs), execs: map[int64][]Exec{}}
	for _, e := range h.Execs {
		rep.execs[e.Run] = append(rep.execs[e.Run], e)
	}
	add := func(rule, detail string, around []wire.Run) {
		v := Violation{Rule: rule, Detail: detail, Around: around}
		for _, r := range around {
			if v.At.IsZero() || r.CreatedAt.Before(v.At) {
				v.At = r.CreatedAt
			}
		}
		rep.Violations = append(rep.Violations, v)
	}
	checkScheduled(h, runs, &rep, add)
	byID := map[int64]wire.Run{}
	for i, r := range runs {
		byID[r.ID] = r
		if !Final(r.State) {
			add("not-final", fmt.Sprintf("run %d is %s after the cluster settled", r.ID, r.State), aroundIndex(runs, i))
		}
	}
	checkExecutions(runs, byID, rep.execs, add)
	checkEpochs(h.EpochStarts, h.AllEpochs, primaryEpochRuns(h, runs), add)
	checkPolicy(h, runs, add)
	checkFaults(h, byID, rep.execs, add)
	checkDeliveries(h, byID, &rep, add)
	rep.Outputs, rep.Gone = checkOutputs(h, byID, add)
	rep.slots = h.Slots
	rep.SlotFired = checkSlots(h, runs, add)
	checkNotifications(h.Notify, &rep, add)
	if h.Sync != nil {
		rep.Violations = append(rep.Violations, CheckSync(*h.Sync)...)
		for _, c := range h.Sync.Target {
			if c.SourceSeq > h.Sync.From {
				rep.Synced++
			}
		}
	}
	rep.Violations = append(rep.Violations, checkSightings(h, runs)...)
	return rep
}

// scheduledTime is one expanded occurrence and the record it belongs to.
type scheduledTime struct {
	at  time.Time
	run wire.Run
}

// Span is the scheduled range a record covers: its scheduled time and, for a record of
// several occurrences, its last one. ok is false for a run that was not scheduled.
func Span(r wire.Run) (first, last time.Time, ok bool) {
	if r.ScheduledAt == nil {
		return time.Time{}, time.Time{}, false
	}
	first, last = *r.ScheduledAt, *r.ScheduledAt
	if r.ScheduledUntil != nil {
		last = *r.ScheduledUntil
	}
	return first, last, true
}

func checkScheduled(h Job, runs []wire.Run, rep *Report, add func(string, string, []wire.Run)) {
	if h.Step <= 0 {
		return
	}
	var times []scheduledTime
	for _, r := range runs {
		first, last, ok := Span(r)
		if !ok {
			continue
		}
		n := 0
		for at := first; !at.After(last); at = at.Add(h.Step) {
			times = append(times, scheduledTime{at: at, run: r})
			n++
		}
		if r.Occurrences > 0 && n != r.Occurrences {
			add("occurrences", fmt.Sprintf("run %d covers %d steps of %s but says %d occurrences", r.ID, n, h.Step, r.Occurrences), []wire.Run{r})
		}
		if r.ScheduledAt.UnixNano()%int64(h.Step) != 0 {
			add("unaligned", fmt.Sprintf("run %d is scheduled at %s, off the %s grid counted from the Unix epoch", r.ID, r.ScheduledAt.Format(time.RFC3339Nano), h.Step), []wire.Run{r})
		}
	}
	if len(times) == 0 {
		return
	}
	slices.SortStableFunc(times, func(a, b scheduledTime) int { return a.at.Compare(b.at) })
	rep.First, rep.Last = times[0].at, times[len(times)-1].at
	distinct := 1
	for i := 1; i < len(times); i++ {
		prev, cur := times[i-1], times[i]
		gap := cur.at.Sub(prev.at)
		switch {
		case gap == 0:
			rep.Duplicates++
			add("duplicate", fmt.Sprintf("scheduled time %s appears in run %d and in run %d", cur.at.Format("15:04:05.000"), prev.run.ID, cur.run.ID),
				aroundTime(runs, cur.at, cur.at, h.Step))
			continue
		case gap != h.Step:
			missing := int(gap/h.Step) - 1
			rep.Lost += missing
			add("lost", fmt.Sprintf("%d scheduled times between %s (run %d) and %s (run %d) have neither run nor record",
				missing, prev.at.Format("15:04:05.000"), prev.run.ID, cur.at.Format("15:04:05.000"), cur.run.ID),
				aroundTime(runs, prev.at, cur.at, h.Step))
		}
		distinct++
	}
	rep.Occurrences = distinct
}

func checkExecutions(runs []wire.Run, byID map[int64]wire.Run, execs map[int64][]Exec, add func(string, string, []wire.Run)) {
	for id, es := range execs {
		r, ok := byID[id]
		if !ok {
			add("executions", fmt.Sprintf("run %d executed (exec log line %d, attempt %d on %s) but is not in the history", id, es[0].Line, es[0].Attempt, es[0].Node), nil)
			continue
		}
		if r.State == "missed" || r.State == "skipped" {
			add("executions", fmt.Sprintf("run %d is a %s record but executed %d times", id, r.State, len(es)), []wire.Run{r})
			continue
		}
		if len(es) > r.Attempt {
			add("executions", fmt.Sprintf("run %d executed %d times in %d attempts", id, len(es), r.Attempt), []wire.Run{r})
		}
		seen := map[int]Exec{}
		for _, e := range es {
			if first, dup := seen[e.Attempt]; dup {
				add("executions", fmt.Sprintf("run %d attempt %d executed twice: on %s (line %d) and on %s (line %d)", id, e.Attempt, first.Node, first.Line, e.Node, e.Line), []wire.Run{r})
			}
			seen[e.Attempt] = e
			if e.Attempt > r.Attempt || e.Attempt < 1 {
				add("executions", fmt.Sprintf("run %d executed as attempt %d (on %s) but its attempt is %d", id, e.Attempt, e.Node, r.Attempt), []wire.Run{r})
			}
		}
	}
	for _, r := range runs {
		if r.State != "succeeded" {
			continue
		}
		witnessed := false
		for _, e := range execs[r.ID] {
			if e.Attempt == r.Attempt && e.Node == r.Node {
				witnessed = true
			}
		}
		if !witnessed {
			add("unwitnessed", fmt.Sprintf("run %d succeeded in attempt %d on %s, but the execution log has no such line", r.ID, r.Attempt, r.Node), []wire.Run{r})
		}
	}
}

func checkEpochs(starts []EpochStart, all bool, runs []wire.Run, add func(string, string, []wire.Run)) {
	// Two nodes in one epoch is a split brain. The same node again in its epoch is not: a
	// holder that stepped down while it still held the lease (a slow renewal) takes it
	// back without a change of holder. The events' order in time says nothing: a node
	// paused between taking the lease and recording the event records it late.
	byEpoch := map[int64]EpochStart{}
	for _, cur := range starts {
		if prev, ok := byEpoch[cur.Epoch]; ok && prev.Node != cur.Node {
			add("epochs", fmt.Sprintf("%s became primary in epoch %d at %s, and %s in the same epoch at %s",
				prev.Node, prev.Epoch, prev.At.Format("15:04:05.000000"), cur.Node, cur.At.Format("15:04:05.000000")), nil)
		}
		byEpoch[cur.Epoch] = cur
	}
	// A term's primary.changed is written in the transaction that takes the lease, so
	// no epoch that did anything goes unrecorded (the soak lists up to 10,000 of them).
	if all {
		told := map[int64]bool{}
		for i, r := range runs {
			if r.Epoch == 0 || byEpoch[r.Epoch].Node != "" || told[r.Epoch] {
				continue
			}
			told[r.Epoch] = true
			add("unrecorded-epoch", fmt.Sprintf("run %d carries epoch %d, which no primary.changed event records", r.ID, r.Epoch), aroundIndex(runs, i))
		}
	}
	for _, s := range starts {
		for i, r := range runs {
			// Only what a primary writes carries its epoch: a scheduled run is fired by
			// one. An on-demand run is created by any node and gets an epoch when assigned;
			// a record (missed, skipped) carries none.
			if r.ScheduledAt == nil || r.Epoch == 0 || !r.CreatedAt.After(s.At) || r.Epoch >= s.Epoch {
				continue
			}
			add("stale-epoch", fmt.Sprintf("run %d was created at %s with epoch %d, after epoch %d began at %s (%s became primary)",
				r.ID, r.CreatedAt.Format("15:04:05.000000"), r.Epoch, s.Epoch, s.At.Format("15:04:05.000000"), s.Node), aroundIndex(runs, i))
		}
	}
}

// primaryEpochRuns are the runs whose epoch is the primary's: all of them, except with
// scheduler slots the scheduled runs never assigned, which carry their slot's epoch
// (checkSlots judges those).
func primaryEpochRuns(h Job, runs []wire.Run) []wire.Run {
	if h.Slots <= 1 {
		return runs
	}
	var out []wire.Run
	for _, r := range runs {
		if r.ScheduledAt == nil || r.Attempt > 0 {
			out = append(out, r)
		}
	}
	return out
}

// aroundIndex returns up to three runs either side of runs[i] (runs sorted by id).
func aroundIndex(runs []wire.Run, i int) []wire.Run {
	return slices.Clone(runs[max(i-3, 0):min(i+4, len(runs))])
}

// aroundTime returns the runs whose scheduled range meets [from−3 steps, to+3 steps], in
// scheduled order: the violation and a few neighbours either side.
func aroundTime(runs []wire.Run, from, to time.Time, step time.Duration) []wire.Run {
	lo, hi := from.Add(-3*step), to.Add(3*step)
	var out []wire.Run
	for _, r := range runs {
		first, last, ok := Span(r)
		if ok && !last.Before(lo) && !first.After(hi) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b wire.Run) int { return a.ScheduledAt.Compare(*b.ScheduledAt) })
	return out
}

// Final reports whether a run state is final.
func Final(state string) bool {
	switch state {
	case "succeeded", "failed", "canceled", "skipped", "missed":
		return true
	}
	return false
}

// CountStates renders how many runs are in each state, e.g. "succeeded=12 queued=1".
func CountStates(rs []wire.Run) string {
	n := map[string]int{}
	for _, r := range rs {
		n[r.State]++
	}
	var parts []string
	for _, s := range []string{"queued", "assigned", "running", "succeeded", "failed", "canceled", "skipped", "missed"} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, n[s]))
		}
	}
	return strings.Join(parts, " ")
}
