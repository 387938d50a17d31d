package schedule

import "time"

// Schedule is an expression with the context that fixes its occurrences.
type Schedule struct {
	Expr     Expr
	Location *time.Location // cron is evaluated in this zone's wall clock; nil means UTC
	Start    time.Time      // zero: unbounded. No occurrence before Start.
	End      time.Time      // zero: unbounded. No occurrence after End.
	// Anchor fixes the phase of @every: occurrences are Anchor + k*interval for every
	// integer k. A non-zero Start takes its place; with both zero the anchor is the Unix
	// epoch. Cron and at ignore it.
	Anchor   time.Time
	Blackout Calendar // dates on which occurrences are skipped (see Plan)
}

func (s *Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// Next returns the first occurrence strictly after `after` within [Start, End], in the
// schedule's Location; false when there is none (a cron search gives up after about ten
// years of civil days). Blackout dates are ignored: see Plan.
func (s Schedule) Next(after time.Time) (time.Time, bool) {
	if s.Expr == nil {
		return time.Time{}, false
	}
	return s.Expr.newSeq(&s).next(after)
}

// BlackedOut reports whether t's local date in the schedule's Location is a blackout date.
func (s Schedule) BlackedOut(t time.Time) bool {
	return s.Blackout.containsTime(t, s.loc())
}
