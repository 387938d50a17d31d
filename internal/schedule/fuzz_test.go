package schedule

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// seedExprs seed the fuzzers and the randomized tests.
var seedExprs = []string{
	"* * * * *", "* * * * * *", "*/7 * * * *", "0 0 29 2 *", "30 2 * * *", "30 1 * * *",
	"0 0 * * *", "0,30 0-3 * * *", "15 2 * * *", "45 1 * * *", "*/15 * * * *",
	"0 0 L * *", "0 0 L-3 * *", "0 0 LW * *", "0 0 15W * *", "0 0 1W * *", "0 9 * * 5L",
	"0 9 * * MON#2", "0 0 13 * FRI", "0 0 1-7 * MON", "*/20 * 0-2 * * *", "59 59 23 31 12 *",
	"0 12 * JAN,JUL SUN", "0 0 ? * 0L", "5/20 * * * *", "0 0 1,15,L,LW * *", "0 0 * * 1#5",
	"@yearly", "@monthly", "@weekly", "@daily", "@hourly",
	"@every 10ms", "@every 90s", "@every 1h", "@every 25h", "@every 7s",
	"at 2026-12-01T07:00:00Z", "at 2011-12-30T12:00:00+01:00",
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range seedExprs {
		f.Add(s)
	}
	for _, s := range []string{"", " ", "0 0 30 2 *", "* * * *", "@every 5ms", "at x", "0 0 * * L",
		"1-5L * * * *", "*/0 * * * *", "0 0 L-31 * *", "0 0 * * 1#6", "0 0 31 4 *", "@reboot",
		"0 0 * * FRI-SUN", "0 0 7/2 * *", "0 0 * * 7/2", "0 0 * * 7L", "0 0 * * 7#1", "0 0 00000000000031 * *"} {
		f.Add(s)
	}
	fields := map[string]bool{"second": true, "minute": true, "hour": true, "day-of-month": true,
		"month": true, "day-of-week": true, "expression": true, "every": true, "at": true}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !fields[pe.Field] || pe.Problem == "" || e != nil {
				t.Fatalf("ParseExpr(%q): bad error %#v", s, err)
			}
			return
		}
		canon := e.String()
		e2, err := ParseExpr(canon)
		if err != nil {
			t.Fatalf("ParseExpr(%q) canonical %q does not parse: %v", s, canon, err)
		}
		if !equivalent(e, e2) || e2.String() != canon {
			t.Fatalf("ParseExpr(%q): canonical %q re-parses as %q", s, canon, e2.String())
		}
	})
}

var fuzzLocs = func() []*time.Location {
	var out []*time.Location
	for _, z := range dstZones {
		l, err := time.LoadLocation(z)
		if err != nil {
			panic(err)
		}
		out = append(out, l)
	}
	return out
}()

// fuzzTime maps arbitrary input onto 1900-2100, where zone data is interesting.
func fuzzTime(sec int64, nsec uint32) time.Time {
	const base, span = -2208988800, 200 * 365 * 86400 // 1900-01-01
	return time.Unix(base+int64(uint64(sec)%span), int64(nsec%1e9))
}

// fuzzExpr parses the fuzzed expression; when the mutation broke it, a seed expression
// stands in, so that fuzzing time goes to occurrences rather than parse errors.
func fuzzExpr(expr string, pick uint8) Expr {
	if e, err := ParseExpr(expr); err == nil {
		return e
	}
	e, _ := ParseExpr(seedExprs[int(pick)%len(seedExprs)])
	return e
}

func FuzzNext(f *testing.F) {
	for i, s := range seedExprs {
		f.Add(s, uint8(i), int64(i)*7777777, uint32(i*1234567), uint8(i))
	}
	// Transitions: midnight (Havana, Santiago), 30 minutes (Lord Howe), a skipped day (Apia).
	f.Add("0 0 * * *", uint8(4), int64(3_582_000_000), uint32(0), uint8(0))
	f.Add("0 12 * * *", uint8(8), int64(3_534_000_000), uint32(0), uint8(0))
	f.Add("*/15 * * * *", uint8(3), int64(3_985_000_000), uint32(0), uint8(0))
	// Both kinds at both of New York's 2026 transitions, at Chatham's (45-minute offsets)
	// and at Santiago's (midnight).
	f.Add("* * * * *", uint8(1), int64(4_002_499_800), uint32(0), uint8(0))
	f.Add("30 1 * * *", uint8(1), int64(4_002_499_800), uint32(0), uint8(0))
	f.Add("15,45 * * * *", uint8(1), int64(3_981_941_100), uint32(0), uint8(0))
	f.Add("30 2 * * *", uint8(1), int64(3_981_941_100), uint32(0), uint8(0))
	f.Add("0,30 * * * *", uint8(13), int64(3_999_504_600), uint32(0), uint8(0))
	f.Add("0 3 * * *", uint8(13), int64(3_984_299_400), uint32(0), uint8(0))
	f.Add("30 */10 * * * *", uint8(5), int64(3_984_345_000), uint32(0), uint8(0))
	f.Fuzz(func(t *testing.T, expr string, zone uint8, sec int64, nsec uint32, pick uint8) {
		e := fuzzExpr(expr, pick)
		loc := fuzzLocs[int(zone)%len(fuzzLocs)]
		s := Schedule{Expr: e, Location: loc}
		after := fuzzTime(sec, nsec)
		cron, _ := e.(*cronExpr)
		walls := map[int64]bool{}
		for i := 0; i < 50; i++ {
			o, ok := s.Next(after)
			if o2, ok2 := s.Next(after); ok2 != ok || !o2.Equal(o) {
				t.Fatalf("Next(%v) is not deterministic", after)
			}
			if !ok {
				return
			}
			if !o.After(after) {
				t.Fatalf("%q in %s: Next(%v) = %v, not after", expr, loc, after, o)
			}
			if cron != nil {
				checkCronResult(t, cron, loc, o, walls)
			}
			after = o
		}
	})
}

// checkCronResult asserts the DST rule for one cron occurrence. An interval occurrence's
// wall reading matches. A fixed-time occurrence's wall reading has not fired before, and
// it either matches at its first occurrence or ends a gap that skipped a matching reading.
func checkCronResult(t *testing.T, c *cronExpr, loc *time.Location, o time.Time, walls map[int64]bool) {
	t.Helper()
	if o.Nanosecond() != 0 {
		t.Fatalf("%s: occurrence %v is not a whole second", c, o)
	}
	if !refFixed(c) {
		if !refMatches(c, o.In(loc)) {
			t.Fatalf("%s in %s: interval occurrence %v does not match its wall reading", c, loc, o.In(loc))
		}
		return
	}
	w := wallOf(o.In(loc))
	if walls[w] {
		t.Fatalf("%s in %s: wall reading of %v fired twice", c, loc, o.In(loc))
	}
	walls[w] = true
	if refMatches(c, o.In(loc)) && !refShownBefore(loc, o) {
		return
	}
	prev := wallOf(o.Add(-time.Second).In(loc))
	for u := prev + 1; u < w; u++ {
		if refMatches(c, time.Unix(u, 0).UTC()) {
			return // the end of a gap that skipped a matching wall time
		}
	}
	t.Fatalf("%s in %s: %v neither matches at its first occurrence nor ends a matching gap", c, loc, o.In(loc))
}

func FuzzPlan(f *testing.F) {
	for i, s := range seedExprs {
		f.Add(s, uint8(i), int64(i)*987654321, uint32(i*3571), uint32(i*61), uint32(i*3600), uint8(i), uint64(i)*0x9e3779b97f4a7c15, uint8(i))
	}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, sec int64, span, grace, window uint32, policy uint8, black uint64, pick uint8) {
		e := fuzzExpr(expr, pick)
		planCase(t, e, fuzzLocs[int(zone)%len(fuzzLocs)], fuzzTime(sec, 0), span, grace, window, policy, black)
	})
}

// planCase builds a Plan scenario from arbitrary numbers and checks it against the model.
func planCase(t testing.TB, e Expr, loc *time.Location, after time.Time, span, grace, window uint32, policy uint8, black uint64) {
	s := Schedule{Expr: e, Location: loc}
	next, ok := s.Next(after)
	if !ok {
		return
	}
	if policy&0x10 != 0 { // a persisted next that is not an occurrence
		next = next.Add(-time.Duration(span%3600+1) * time.Second / 3)
	}
	// Blackout dates near next: a few specific ones and maybe a yearly one.
	var dates []string
	for i := 0; i < int(black%5); i++ {
		d := next.In(loc).AddDate(0, 0, int(black>>(8*i+3)%5))
		dates = append(dates, d.Format("2006-01-02"))
	}
	if black&(1<<60) != 0 {
		dates = append(dates, next.In(loc).AddDate(0, 0, 1).Format("*-01-02"))
	}
	cal, err := ParseCalendar(dates)
	if err != nil {
		t.Fatalf("calendar %v: %v", dates, err)
	}
	s.Blackout = cal
	// Keep the backlog to a few thousand occurrences so the model stays affordable.
	maxSpan := 3 * 24 * time.Hour
	if o2, ok := s.Next(next); ok {
		maxSpan = min(maxSpan, o2.Sub(next)*5000)
	}
	now := next.Add(time.Duration(span) * time.Second % maxSpan)
	if policy&0x20 != 0 {
		now = next.Add(-time.Duration(span%86400) * time.Second)
	}
	p := Policy{
		Misfire: []Misfire{MisfireSkip, MisfireRunOnce, MisfireRunAll, ""}[policy%4],
		Grace:   time.Duration(grace%7200) * time.Second,
		Window:  time.Duration(window%(2*86400)) * time.Second,
	}
	pl := s.Plan(next, now, p)
	checkPlan(t, s, next, now, p, pl)
}

// A deterministic sample of plan scenarios in every test run.
func TestPlanMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 1000
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		e := mustParse(t, seedExprs[rng.IntN(len(seedExprs))])
		loc := fuzzLocs[rng.IntN(len(fuzzLocs))]
		after := fuzzTime(rng.Int64(), 0)
		if i%2 == 0 { // mostly near today, where DST rules are current
			after = rfc(t, "2024-01-01T00:00:00Z").Add(time.Duration(rng.IntN(5*365*86400)) * time.Second)
		}
		planCase(t, e, loc, after, rng.Uint32(), rng.Uint32(), rng.Uint32(), uint8(rng.Uint32()), rng.Uint64())
	}
}
