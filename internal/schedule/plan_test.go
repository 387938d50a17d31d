package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// modelPlan states Plan's rules directly, one occurrence at a time. It reports false
// when the schedule has more than maxOcc occurrences to look at.
func modelPlan(s Schedule, next, now time.Time, p Policy, maxOcc int) (Plan, bool) {
	var pl Plan
	if s.Expr == nil {
		return Plan{Done: true}, true
	}
	if next.IsZero() {
		n, ok := s.Next(now)
		if !ok {
			return Plan{Done: true}, true
		}
		next = n
	}
	limit := later(now, next).Add(horizon)
	var nonBlack []time.Time
	prevBlack, seen := false, 0
	skip := func(o time.Time) {
		if prevBlack {
			r := &pl.Skipped[len(pl.Skipped)-1]
			r.Last, r.Count = o, r.Count+1
		} else {
			pl.Skipped = append(pl.Skipped, Range{First: o, Last: o, Count: 1})
		}
		prevBlack = true
	}
	o, ok := next, true
	for ; ok && !o.After(now); o, ok = s.Next(o) {
		if seen++; seen > maxOcc {
			return Plan{}, false
		}
		if s.BlackedOut(o) {
			skip(o)
		} else {
			nonBlack = append(nonBlack, o)
			prevBlack = false
		}
	}
	for ; ok && s.BlackedOut(o); o, ok = s.Next(o) {
		if seen++; seen > maxOcc {
			return Plan{}, false
		}
		if o.After(limit) {
			ok = false
			break
		}
		skip(o)
	}
	if ok {
		pl.Next = o
	} else {
		pl.Done = true
	}

	grace, window := max(p.Grace, 0), max(p.Window, 0)
	var onTime, misfired, fire, missed []time.Time
	for _, o := range nonBlack {
		if now.Sub(o) <= grace {
			onTime = append(onTime, o)
		} else {
			misfired = append(misfired, o)
		}
	}
	switch p.Misfire {
	case MisfireRunOnce:
		if len(misfired) > 0 {
			missed = misfired[:len(misfired)-1]
			fire = misfired[len(misfired)-1:]
		}
	case MisfireRunAll:
		for _, o := range misfired {
			if window == 0 || now.Sub(o) <= window {
				fire = append(fire, o)
			} else {
				missed = append(missed, o)
			}
		}
	default:
		missed = misfired
	}
	fire = append(fire, onTime...)
	if len(fire) > RunAllCap {
		missed = append(missed, fire[:len(fire)-RunAllCap]...)
		fire = fire[len(fire)-RunAllCap:]
	}
	if len(fire) > 0 {
		pl.Fire = fire
	}
	if len(missed) > 0 {
		pl.Missed = Range{First: missed[0], Last: missed[len(missed)-1], Count: len(missed)}
	}
	return pl, true
}

func fmtRange(r Range) string {
	if r.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("%s..%s (%d)", r.First.Format(time.RFC3339Nano), r.Last.Format(time.RFC3339Nano), r.Count)
}

func fmtPlan(pl Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fire %d", len(pl.Fire))
	if n := len(pl.Fire); n > 0 {
		fmt.Fprintf(&b, " [%s..%s]", pl.Fire[0].Format(time.RFC3339Nano), pl.Fire[n-1].Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, "; Missed %s; Skipped", fmtRange(pl.Missed))
	for _, r := range pl.Skipped {
		fmt.Fprintf(&b, " %s", fmtRange(r))
	}
	fmt.Fprintf(&b, "; Next %s; Done %v", pl.Next.Format(time.RFC3339Nano), pl.Done)
	return b.String()
}

func samePlan(a, b Plan) bool {
	if len(a.Fire) != len(b.Fire) || len(a.Skipped) != len(b.Skipped) || a.Done != b.Done || !a.Next.Equal(b.Next) {
		return false
	}
	for i := range a.Fire {
		if !a.Fire[i].Equal(b.Fire[i]) {
			return false
		}
	}
	same := func(x, y Range) bool {
		return x.Count == y.Count && (x.Count == 0 || x.First.Equal(y.First) && x.Last.Equal(y.Last))
	}
	for i := range a.Skipped {
		if !same(a.Skipped[i], b.Skipped[i]) {
			return false
		}
	}
	return same(a.Missed, b.Missed)
}

// checkPlan asserts Plan's invariants, and equality with the model when it is affordable.
func checkPlan(t testing.TB, s Schedule, next, now time.Time, p Policy, pl Plan) {
	t.Helper()
	if len(pl.Fire) > RunAllCap {
		t.Fatalf("Fire has %d entries, over RunAllCap", len(pl.Fire))
	}
	for i, f := range pl.Fire {
		if f.After(now) || (!next.IsZero() && f.Before(next)) || s.BlackedOut(f) {
			t.Fatalf("Fire[%d] = %v outside [next, now] or blacked out", i, f)
		}
		if i > 0 && !f.After(pl.Fire[i-1]) {
			t.Fatalf("Fire not ascending at %d", i)
		}
	}
	if pl.Missed.Count > 0 && len(pl.Fire) > 0 && !pl.Missed.Last.Before(pl.Fire[0]) {
		t.Fatalf("Missed %s not before Fire %v", fmtRange(pl.Missed), pl.Fire[0])
	}
	if pl.Done != pl.Next.IsZero() {
		t.Fatalf("Done %v with Next %v", pl.Done, pl.Next)
	}
	if !pl.Done && (!pl.Next.After(now) && !pl.Next.Equal(next) || s.BlackedOut(pl.Next)) {
		t.Fatalf("Next %v is not after now %v or is blacked out", pl.Next, now)
	}
	for i, r := range pl.Skipped {
		if r.Count <= 0 || r.Last.Before(r.First) || (i > 0 && !r.First.After(pl.Skipped[i-1].Last)) {
			t.Fatalf("bad Skipped[%d] %s", i, fmtRange(r))
		}
	}
	want, ok := modelPlan(s, next, now, p, 200000)
	if ok && !samePlan(pl, want) {
		t.Fatalf("%s: Plan(%v, %v, %+v)\n got %s\nwant %s", s.Expr, next, now, p, fmtPlan(pl), fmtPlan(want))
	}
}

func TestPlanPolicies(t *testing.T) {
	s := Schedule{Expr: mustParse(t, "*/10 * * * *")}
	next, now := rfc(t, "2026-01-01T10:00:00Z"), rfc(t, "2026-01-01T10:35:00Z")
	tm := func(hm string) time.Time { return rfc(t, "2026-01-01T"+hm+":00Z") }
	cases := []struct {
		name   string
		p      Policy
		fire   []string
		missed Range
	}{
		{"skip", Policy{Misfire: MisfireSkip, Grace: time.Minute}, nil, Range{tm("10:00"), tm("10:30"), 4}},
		{"skip with grace", Policy{Misfire: MisfireSkip, Grace: 6 * time.Minute}, []string{"10:30"}, Range{tm("10:00"), tm("10:20"), 3}},
		{"grace is inclusive", Policy{Misfire: MisfireSkip, Grace: 5 * time.Minute}, []string{"10:30"}, Range{tm("10:00"), tm("10:20"), 3}},
		{"unknown policy skips", Policy{Grace: time.Minute}, nil, Range{tm("10:00"), tm("10:30"), 4}},
		{"run-once", Policy{Misfire: MisfireRunOnce}, []string{"10:30"}, Range{tm("10:00"), tm("10:20"), 3}},
		{"run-once with grace", Policy{Misfire: MisfireRunOnce, Grace: 6 * time.Minute}, []string{"10:20", "10:30"}, Range{tm("10:00"), tm("10:10"), 2}},
		{"run-once all on time", Policy{Misfire: MisfireRunOnce, Grace: time.Hour}, []string{"10:00", "10:10", "10:20", "10:30"}, Range{}},
		{"run-all window", Policy{Misfire: MisfireRunAll, Window: 20 * time.Minute}, []string{"10:20", "10:30"}, Range{tm("10:00"), tm("10:10"), 2}},
		{"run-all window inclusive", Policy{Misfire: MisfireRunAll, Window: 15 * time.Minute}, []string{"10:20", "10:30"}, Range{tm("10:00"), tm("10:10"), 2}},
		{"run-all no limit", Policy{Misfire: MisfireRunAll}, []string{"10:00", "10:10", "10:20", "10:30"}, Range{}},
		{"run-all window below grace", Policy{Misfire: MisfireRunAll, Grace: 6 * time.Minute, Window: time.Minute}, []string{"10:30"}, Range{tm("10:00"), tm("10:20"), 3}},
		{"negative durations are zero", Policy{Misfire: MisfireRunAll, Grace: -time.Hour, Window: -time.Hour}, []string{"10:00", "10:10", "10:20", "10:30"}, Range{}},
	}
	for _, c := range cases {
		pl := s.Plan(next, now, c.p)
		var fire []string
		for _, f := range pl.Fire {
			fire = append(fire, f.Format("15:04"))
		}
		if strings.Join(fire, " ") != strings.Join(c.fire, " ") || fmtRange(pl.Missed) != fmtRange(c.missed) {
			t.Errorf("%s: Fire %v Missed %s; want %v, %s", c.name, fire, fmtRange(pl.Missed), c.fire, fmtRange(c.missed))
		}
		if !pl.Next.Equal(tm("10:40")) || pl.Done || len(pl.Skipped) != 0 {
			t.Errorf("%s: Next %v Done %v Skipped %v", c.name, pl.Next, pl.Done, pl.Skipped)
		}
		checkPlan(t, s, next, now, c.p, pl)
	}
}

func TestPlanNotDue(t *testing.T) {
	s := Schedule{Expr: mustParse(t, "*/10 * * * *")}
	next, now := rfc(t, "2026-01-01T10:40:00Z"), rfc(t, "2026-01-01T10:35:00Z")
	pl := s.Plan(next, now, Policy{Misfire: MisfireRunAll})
	if len(pl.Fire) != 0 || pl.Missed.Count != 0 || !pl.Next.Equal(next) || pl.Done {
		t.Errorf("not due: %s", fmtPlan(pl))
	}
	checkPlan(t, s, next, now, Policy{}, pl)

	// No persisted next: plan from now.
	pl = s.Plan(time.Time{}, now, Policy{Misfire: MisfireRunAll})
	if len(pl.Fire) != 0 || !pl.Next.Equal(next) {
		t.Errorf("zero next: %s", fmtPlan(pl))
	}
	checkPlan(t, s, time.Time{}, now, Policy{Misfire: MisfireRunAll}, pl)
}

func TestPlanBlackout(t *testing.T) {
	cal, err := ParseCalendar([]string{"2026-03-10", "2026-03-12", "2026-03-13"})
	if err != nil {
		t.Fatal(err)
	}
	hourly := Schedule{Expr: mustParse(t, "0 * * * *"), Blackout: cal}
	all := Policy{Misfire: MisfireRunAll}

	// Due work before the blackout fires; the blacked-out day is one range, recorded up
	// front through the rest of the day.
	next, now := rfc(t, "2026-03-09T22:00:00Z"), rfc(t, "2026-03-10T05:30:00Z")
	pl := hourly.Plan(next, now, all)
	if got := fmtPlan(pl); got != "Fire 2 [2026-03-09T22:00:00Z..2026-03-09T23:00:00Z]; Missed none; "+
		"Skipped 2026-03-10T00:00:00Z..2026-03-10T23:00:00Z (24); Next 2026-03-11T00:00:00Z; Done false" {
		t.Errorf("got %s", got)
	}
	checkPlan(t, hourly, next, now, all, pl)

	// Two consecutive blacked-out days are one stretch.
	next, now = rfc(t, "2026-03-11T23:00:00Z"), rfc(t, "2026-03-12T00:30:00Z")
	pl = hourly.Plan(next, now, all)
	if got := fmtPlan(pl); got != "Fire 1 [2026-03-11T23:00:00Z..2026-03-11T23:00:00Z]; Missed none; "+
		"Skipped 2026-03-12T00:00:00Z..2026-03-13T23:00:00Z (48); Next 2026-03-14T00:00:00Z; Done false" {
		t.Errorf("got %s", got)
	}
	checkPlan(t, hourly, next, now, all, pl)

	// A backlog across separate blackouts: stretches in order, Missed spans them.
	next, now = rfc(t, "2026-03-09T00:00:00Z"), rfc(t, "2026-03-14T00:00:00Z")
	pl = hourly.Plan(next, now, Policy{Misfire: MisfireRunOnce})
	if got := fmtPlan(pl); got != "Fire 2 [2026-03-11T23:00:00Z..2026-03-14T00:00:00Z]; "+
		"Missed 2026-03-09T00:00:00Z..2026-03-11T22:00:00Z (47); "+
		"Skipped 2026-03-10T00:00:00Z..2026-03-10T23:00:00Z (24) 2026-03-12T00:00:00Z..2026-03-13T23:00:00Z (48); "+
		"Next 2026-03-14T01:00:00Z; Done false" {
		t.Errorf("got %s", got)
	}
	checkPlan(t, hourly, next, now, Policy{Misfire: MisfireRunOnce}, pl)

	// next itself blacked out and not yet due: Next moves past the blackout.
	next, now = rfc(t, "2026-03-10T01:00:00Z"), rfc(t, "2026-03-09T12:00:00Z")
	pl = hourly.Plan(next, now, all)
	if got := fmtPlan(pl); got != "Fire 0; Missed none; Skipped 2026-03-10T01:00:00Z..2026-03-10T23:00:00Z (23); "+
		"Next 2026-03-11T00:00:00Z; Done false" {
		t.Errorf("got %s", got)
	}
	checkPlan(t, hourly, next, now, all, pl)
}

// High-frequency schedules over a blacked-out day give one exact range, fast.
func TestPlanBlackoutHighFrequency(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	cal, _ := ParseCalendar([]string{"2026-03-10", "2026-03-29", "2026-10-25"})
	cases := []struct {
		expr, next string
		count      int
	}{
		{"* * * * * *", "2026-03-09T23:59:59+01:00", 86400},
		{"@every 10ms", "2026-03-09T23:59:59.99+01:00", 8640000},
		{"* * * * * *", "2026-03-28T23:59:59+01:00", 82800}, // 23-hour day
		{"@every 1s", "2026-10-24T23:59:59+02:00", 90000},   // 25-hour day, absolute time
		{"* * * * * *", "2026-10-24T23:59:59+02:00", 90000}, // interval: the repeated hour fires twice
	}
	for _, c := range cases {
		s := Schedule{Expr: mustParse(t, c.expr), Location: berlin, Blackout: cal}
		next := rfc(t, c.next)
		now := next.Add(time.Hour)
		pl := s.Plan(next, now, Policy{Misfire: MisfireRunAll})
		if len(pl.Fire) != 1 || len(pl.Skipped) != 1 || pl.Skipped[0].Count != c.count {
			t.Errorf("%s from %s: %s, want one skipped range of %d", c.expr, c.next, fmtPlan(pl), c.count)
		}
		if !s.BlackedOut(pl.Skipped[0].Last) || s.BlackedOut(pl.Next) {
			t.Errorf("%s: bad boundaries %s", c.expr, fmtPlan(pl))
		}
	}
}

// A calendar covering every day cannot hold the schedule forever: Done after the horizon.
func TestPlanBlackoutForever(t *testing.T) {
	var days []string
	for d := rfc(t, "2000-01-01T00:00:00Z"); d.Year() == 2000; d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format("*-01-02"))
	}
	cal, err := ParseCalendar(days)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"0 * * * *", "@every 1h"} {
		s := Schedule{Expr: mustParse(t, e), Blackout: cal}
		next := rfc(t, "2026-01-01T00:00:00Z")
		pl := s.Plan(next, next, Policy{Misfire: MisfireRunAll})
		if !pl.Done || len(pl.Fire) != 0 || len(pl.Skipped) != 1 || pl.Skipped[0].Count < 24*3650 {
			t.Errorf("%s: %s", e, fmtPlan(pl))
		}
	}
}

func TestPlanCap(t *testing.T) {
	next := rfc(t, "2026-01-01T00:00:00Z")
	now := next.Add(24 * time.Hour)
	for _, e := range []string{"* * * * * *", "@every 1s"} {
		s := Schedule{Expr: mustParse(t, e)}
		pl := s.Plan(next, now, Policy{Misfire: MisfireRunAll})
		if len(pl.Fire) != RunAllCap || !pl.Fire[0].Equal(now.Add(-(RunAllCap-1)*time.Second)) ||
			!pl.Fire[RunAllCap-1].Equal(now) {
			t.Errorf("%s: %s", e, fmtPlan(pl))
		}
		if pl.Missed.Count != 86401-RunAllCap || !pl.Missed.First.Equal(next) ||
			!pl.Missed.Last.Equal(now.Add(-RunAllCap*time.Second)) {
			t.Errorf("%s: Missed %s", e, fmtRange(pl.Missed))
		}
		checkPlan(t, s, next, now, Policy{Misfire: MisfireRunAll}, pl)
	}
}

// Huge backlogs are counted, not walked.
func TestPlanHugeBacklog(t *testing.T) {
	next := rfc(t, "2025-01-01T00:00:00Z")
	now := rfc(t, "2026-01-01T00:00:00Z")
	cases := []struct {
		expr   string
		missed int // all but the two fired: the latest misfired and now itself
	}{
		{"* * * * * *", 365*86400 + 1 - 2}, // interval: every real second (the lost and the repeated hour cancel)
		{"@every 10ms", 365*8640000 + 1 - 2},
	}
	for _, c := range cases {
		s := Schedule{Expr: mustParse(t, c.expr), Location: mustLoc(t, "America/New_York")}
		start := time.Now()
		pl := s.Plan(next, now, Policy{Misfire: MisfireRunOnce})
		if len(pl.Fire) != 2 || !pl.Fire[1].Equal(now) || pl.Missed.Count != c.missed {
			t.Errorf("%s: %s", c.expr, fmtPlan(pl))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: Plan took %v", c.expr, d)
		}
	}
}

func TestPlanBoundsAndAt(t *testing.T) {
	s := Schedule{Expr: mustParse(t, "0 * * * *"), End: rfc(t, "2026-01-01T12:00:00Z")}
	next, now := rfc(t, "2026-01-01T11:00:00Z"), rfc(t, "2026-01-01T12:30:00Z")
	pl := s.Plan(next, now, Policy{Misfire: MisfireRunAll})
	if len(pl.Fire) != 2 || !pl.Done || !pl.Next.IsZero() {
		t.Errorf("end: %s", fmtPlan(pl))
	}
	checkPlan(t, s, next, now, Policy{Misfire: MisfireRunAll}, pl)

	at := rfc(t, "2026-12-01T07:00:00Z")
	a := Schedule{Expr: mustParse(t, "at 2026-12-01T07:00:00Z")}
	cases := []struct {
		p    Policy
		now  time.Time
		want string
	}{
		{Policy{Misfire: MisfireRunOnce}, at.Add(time.Hour), "Fire 1 [2026-12-01T07:00:00Z..2026-12-01T07:00:00Z]; Missed none; Skipped; Next 0001-01-01T00:00:00Z; Done true"},
		{Policy{Misfire: MisfireSkip}, at.Add(time.Hour), "Fire 0; Missed 2026-12-01T07:00:00Z..2026-12-01T07:00:00Z (1); Skipped; Next 0001-01-01T00:00:00Z; Done true"},
		{Policy{Misfire: MisfireSkip, Grace: 2 * time.Hour}, at.Add(time.Hour), "Fire 1 [2026-12-01T07:00:00Z..2026-12-01T07:00:00Z]; Missed none; Skipped; Next 0001-01-01T00:00:00Z; Done true"},
		{Policy{Misfire: MisfireSkip}, at.Add(-time.Hour), "Fire 0; Missed none; Skipped; Next 2026-12-01T07:00:00Z; Done false"},
	}
	for _, c := range cases {
		pl := a.Plan(at, c.now, c.p)
		if got := fmtPlan(pl); got != c.want {
			t.Errorf("at %+v now %v: %s", c.p, c.now, got)
		}
		checkPlan(t, a, at, c.now, c.p, pl)
	}
	if pl := (Schedule{}).Plan(at, at, Policy{}); !pl.Done {
		t.Error("a Schedule without Expr is not Done")
	}
}

// A persisted next that is not an occurrence of the expression is still planned first.
func TestPlanNextNotAnOccurrence(t *testing.T) {
	s := Schedule{Expr: mustParse(t, "0 * * * *")}
	next, now := rfc(t, "2026-01-01T10:30:00Z"), rfc(t, "2026-01-01T12:10:00Z")
	p := Policy{Misfire: MisfireRunAll}
	pl := s.Plan(next, now, p)
	if len(pl.Fire) != 3 || !pl.Fire[0].Equal(next) {
		t.Errorf("got %s", fmtPlan(pl))
	}
	checkPlan(t, s, next, now, p, pl)
}
