package schedule

import "time"

// Misfire is what happens to occurrences that are late by more than the grace period.
type Misfire string

// Misfire policies. Their values match the job file's "misfire" setting. Any other value
// (including "") behaves as MisfireSkip: an unknown policy never fires late work.
const (
	MisfireSkip    Misfire = "skip"     // record them as missed, fire nothing
	MisfireRunOnce Misfire = "run-once" // fire the latest of them, record the rest as missed
	MisfireRunAll  Misfire = "run-all"  // fire those late by at most Window, record the rest
)

// RunAllCap bounds Plan.Fire: at most this many occurrences are fired by one plan, the
// latest ones; older excess occurrences are counted in Missed.
const RunAllCap = 10000

// horizon bounds the look-ahead over blacked-out occurrences: about ten years, as for a
// cron search.
const horizon = searchDays * 24 * time.Hour

// Policy says how a plan treats due occurrences. Negative durations count as zero.
type Policy struct {
	Misfire Misfire
	Grace   time.Duration // an occurrence late by at most Grace is on time and fires normally
	Window  time.Duration // run-all: misfired occurrences late by at most Window fire; 0 means no limit
}

// Range is Count occurrences from First to Last inclusive (Count 0: none).
type Range struct {
	First, Last time.Time
	Count       int
}

// Plan is what to do with a schedule's due occurrences. Every occurrence from the planned
// `next` up to (excluding) Plan.Next is in exactly one of Fire, Missed and Skipped; when
// Done, so is every occurrence the plan looked at.
type Plan struct {
	Fire    []time.Time // occurrences to create runs for, ascending
	Missed  Range       // occurrences not fired because they were late beyond Grace
	Skipped []Range     // blacked-out occurrences, in contiguous stretches, ascending
	Next    time.Time   // first occurrence after now that is not blacked out; zero if Done
	Done    bool        // the schedule has no further occurrence
}

// run is a stretch of consecutive non-blacked-out occurrences within [next, now]. lone
// marks the planned `next` when it is not an occurrence of the expression (it is then
// treated as one, alone).
type run struct {
	first, last time.Time
	n           int64
	lone        bool
}

type planner struct {
	s     *Schedule
	q     sequence
	loc   *time.Location
	pl    Plan
	runs  []run
	limit time.Time // look-ahead bound over blacked-out occurrences
}

// Plan classifies the occurrences o with next <= o <= now, where o runs over next,
// Next(next), ... (next is the persisted next occurrence, normally due):
//   - o's local date is blacked out: Skipped;
//   - now-o <= Grace: Fire;
//   - otherwise o misfired: MisfireSkip puts it in Missed; MisfireRunOnce fires the latest
//     misfired occurrence and puts the others in Missed; MisfireRunAll fires those with
//     now-o <= Window (all when Window is 0) and puts older ones in Missed.
//
// Fire holds at most RunAllCap occurrences, the latest; older excess goes to Missed, so
// Missed is always the earliest non-blacked-out occurrences. Next is the first occurrence
// after now whose date is not blacked out; blacked-out occurrences before it are in Skipped
// too, merged with any stretch they continue. When next > now nothing is due: Next is next
// unless next is blacked out. A zero next means no persisted state: nothing is due and Next
// is computed from now. Done is set when the schedule has no further occurrence, or when
// blackouts cover every occurrence for about ten years.
func (s Schedule) Plan(next, now time.Time, p Policy) Plan {
	if s.Expr == nil {
		return Plan{Done: true}
	}
	b := &planner{s: &s, q: s.Expr.newSeq(&s), loc: s.loc()}
	if next.IsZero() {
		var ok bool
		if next, ok = b.q.next(now); !ok {
			return Plan{Done: true}
		}
	}
	b.limit = later(now, next).Add(horizon)

	o, ok := next, true
	lone := !b.isOccurrence(next)
	for ok && !o.After(now) {
		if s.BlackedOut(o) {
			o, ok = b.skip(o, lone)
			lone = false
			continue
		}
		r := run{first: o, last: o, n: 1, lone: lone}
		if !lone {
			end := now
			if !s.Blackout.empty() {
				end = b.cleanUntil(o, now)
			}
			if n, last := b.q.count(o, end); n > 0 {
				r.n, r.last = n, last
			}
		}
		lone = false
		b.runs = append(b.runs, r)
		o, ok = b.q.next(r.last)
	}
	if ok && s.BlackedOut(o) {
		o, ok = b.skip(o, lone)
	}
	if ok {
		b.pl.Next = o
	} else {
		b.pl.Done = true
	}
	b.classify(now, p)
	return b.pl
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (b *planner) isOccurrence(t time.Time) bool {
	o, ok := b.q.next(t.Add(-1))
	return ok && o.Equal(t)
}

// skip consumes the blacked-out stretch starting at o, a day at a time, records it in
// Skipped and returns the first occurrence after it (false: none within the horizon).
func (b *planner) skip(o time.Time, lone bool) (time.Time, bool) {
	r := Range{First: o, Last: o}
	ok := true
	if lone {
		r.Count = 1
		o, ok = b.q.next(o)
	}
	for ok && b.s.BlackedOut(o) {
		if o.After(b.limit) {
			ok = false
			break
		}
		n, last := b.q.count(o, dayEnd(o, b.loc).Add(-1))
		if n == 0 { // o is an occurrence, so this cannot happen; never loop on it
			n, last = 1, o
		}
		r.Count += int(n)
		r.Last = last
		o, ok = b.q.next(last)
	}
	if r.Count > 0 {
		b.pl.Skipped = append(b.pl.Skipped, r)
	}
	return o, ok
}

// cleanUntil returns the last instant <= now before the first blacked-out local date
// after o's.
func (b *planner) cleanUntil(o, now time.Time) time.Time {
	for e := o; ; {
		e = dayEnd(e, b.loc)
		if e.After(now) {
			return now
		}
		if b.s.BlackedOut(e) {
			return e.Add(-1)
		}
	}
}

// countIn returns how many of the runs' occurrences lie in [from, to].
func (b *planner) countIn(from, to time.Time) int64 {
	var n int64
	for _, r := range b.runs {
		lo, hi := later(r.first, from), r.last
		if to.Before(hi) {
			hi = to
		}
		switch {
		case hi.Before(lo):
		case r.lone:
			n++
		default:
			c, _ := b.q.count(lo, hi)
			n += c
		}
	}
	return n
}

// nth returns the k-th (k >= 1) occurrence of the runs, and the index of its run.
func (b *planner) nth(k int64) (time.Time, int) {
	for i, r := range b.runs {
		if k <= r.n {
			if r.lone {
				return r.first, i
			}
			t, _ := b.q.nth(r.first, k)
			return t, i
		}
		k -= r.n
	}
	return time.Time{}, len(b.runs)
}

func (b *planner) classify(now time.Time, p Policy) {
	var total int64
	for _, r := range b.runs {
		total += r.n
	}
	if total == 0 {
		return
	}
	grace, window := max(p.Grace, 0), max(p.Window, 0)
	fireFrom := now.Add(-grace)
	onTime := b.countIn(fireFrom, now)
	fire := onTime
	switch p.Misfire {
	case MisfireRunOnce:
		if total > onTime {
			fire++
		}
	case MisfireRunAll:
		if window == 0 {
			fire = total
		} else if from := now.Add(-window); from.Before(fireFrom) {
			fire = b.countIn(from, now)
		}
	}
	fire = min(fire, RunAllCap)
	if missed := total - fire; missed > 0 {
		last, _ := b.nth(missed)
		b.pl.Missed = Range{First: b.runs[0].first, Last: last, Count: int(missed)}
	}
	if fire == 0 {
		return
	}
	b.pl.Fire = make([]time.Time, 0, fire)
	o, i := b.nth(total - fire + 1)
	for int64(len(b.pl.Fire)) < fire && i < len(b.runs) {
		b.pl.Fire = append(b.pl.Fire, o)
		var ok bool
		if o, ok = b.q.next(o); !ok || b.runs[i].lone || o.After(b.runs[i].last) {
			if i++; i < len(b.runs) {
				o = b.runs[i].first
			}
		}
	}
}
