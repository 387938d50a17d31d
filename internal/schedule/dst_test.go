package schedule

import (
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Exact instants around DST transitions, both kinds each way (2026-2027). Offsets in the
// expected values show which pass of a repeated stretch fired, and whether a skipped wall
// time fired at the gap's end (fixed-time) or not at all (interval).
func TestNextDST(t *testing.T) {
	cases := []struct {
		zone, expr, after string
		want              []string
	}{
		// New York 2026: 02:00 EST -> 03:00 EDT on Mar 8; 02:00 EDT -> 01:00 EST on Nov 1.
		{"America/New_York", "30 2 * * *", "2026-03-07T12:00:00-05:00", // fixed: at the gap's end
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"America/New_York", "15,45 * * * *", "2026-03-08T01:30:00-05:00", // interval: never at :00
			[]string{"2026-03-08T01:45:00-05:00", "2026-03-08T03:15:00-04:00", "2026-03-08T03:45:00-04:00"}},
		{"America/New_York", "30 */10 * * * *", "2026-03-08T01:55:00-05:00", // seconds stay 30
			[]string{"2026-03-08T03:00:30-04:00", "2026-03-08T03:10:30-04:00"}},
		{"America/New_York", "0,30 2,3 * * *", "2026-03-08T01:45:00-05:00", // no 02:xx, no extra run
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:00:00-04:00"}},
		{"America/New_York", "* * * * * *", "2026-03-08T01:59:58-05:00",
			[]string{"2026-03-08T01:59:59-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:01-04:00"}},
		{"America/New_York", "30 1 * * *", "2026-10-31T12:00:00-04:00", // fixed: first pass only
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"America/New_York", "59 59 1 * * *", "2026-11-01T01:00:00-05:00",
			[]string{"2026-11-02T01:59:59-05:00"}},
		{"America/New_York", "*/20 * * * *", "2026-11-01T00:50:00-04:00", // interval: both passes
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
				"2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
				"2026-11-01T02:00:00-05:00"}},
		{"America/New_York", "*/20 * * * *", "2026-11-01T01:10:00-05:00", // inside the second pass
			[]string{"2026-11-01T01:20:00-05:00"}},
		{"America/New_York", "0 * * * *", "2026-11-01T00:30:00-04:00", // 05:00Z, 06:00Z, 07:00Z
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
		// New York 2027: Mar 14 and Nov 7.
		{"America/New_York", "0 2 * * *", "2027-03-13T12:00:00-05:00",
			[]string{"2027-03-14T03:00:00-04:00", "2027-03-15T02:00:00-04:00"}},
		{"America/New_York", "0,30 2-3 * * *", "2027-03-14T01:45:00-05:00",
			[]string{"2027-03-14T03:00:00-04:00", "2027-03-14T03:30:00-04:00", "2027-03-15T02:00:00-04:00"}},
		{"America/New_York", "0 1-2 * * *", "2027-11-07T00:00:00-04:00",
			[]string{"2027-11-07T01:00:00-04:00", "2027-11-07T01:00:00-05:00", "2027-11-07T02:00:00-05:00"}},
		// Berlin 2026: 02:00 CET -> 03:00 CEST on Mar 29; 03:00 CEST -> 02:00 CET on Oct 25.
		{"Europe/Berlin", "30 2 * * *", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Europe/Berlin", "*/30 * * * *", "2026-03-29T01:15:00+01:00",
			[]string{"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"}},
		{"Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Europe/Berlin", "0 * * * *", "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		// Berlin 2027: Mar 28 and Oct 31.
		{"Europe/Berlin", "15 2 * * *", "2027-03-27T12:00:00+01:00",
			[]string{"2027-03-28T03:00:00+02:00", "2027-03-29T02:15:00+02:00"}},
		{"Europe/Berlin", "15 2-3 * * *", "2027-03-27T12:00:00+01:00",
			[]string{"2027-03-28T03:15:00+02:00", "2027-03-29T02:15:00+02:00"}},
		{"Europe/Berlin", "0 0 2 * * *", "2027-10-30T12:00:00+02:00",
			[]string{"2027-10-31T02:00:00+02:00", "2027-11-01T02:00:00+01:00"}},
		{"Europe/Berlin", "0 2,4 * * *", "2027-10-30T12:00:00+02:00",
			[]string{"2027-10-31T02:00:00+02:00", "2027-10-31T02:00:00+01:00", "2027-10-31T04:00:00+01:00"}},
		// Lord Howe 2026: 30-minute DST. 02:00 +11 -> 01:30 +1030 on Apr 5;
		// 02:00 +1030 -> 02:30 +11 on Oct 4.
		{"Australia/Lord_Howe", "15 2 * * *", "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"Australia/Lord_Howe", "*/15 * * * *", "2026-10-04T01:40:00+10:30",
			[]string{"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"}},
		{"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00:00+11:00",
			[]string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"Australia/Lord_Howe", "*/15 * * * *", "2026-04-05T01:20:00+11:00",
			[]string{"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
				"2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}},
		// Lord Howe 2027: Apr 4 and Oct 3.
		{"Australia/Lord_Howe", "0 2 * * *", "2027-10-02T12:00:00+10:30",
			[]string{"2027-10-03T02:30:00+11:00", "2027-10-04T02:00:00+11:00"}},
		{"Australia/Lord_Howe", "0,10 2 * * *", "2027-10-02T12:00:00+10:30",
			[]string{"2027-10-04T02:00:00+11:00", "2027-10-04T02:10:00+11:00"}},
		{"Australia/Lord_Howe", "40 1 * * *", "2027-04-03T12:00:00+11:00",
			[]string{"2027-04-04T01:40:00+11:00", "2027-04-05T01:40:00+10:30"}},
		{"Australia/Lord_Howe", "40 1,3 * * *", "2027-04-04T01:00:00+11:00",
			[]string{"2027-04-04T01:40:00+11:00", "2027-04-04T01:40:00+10:30", "2027-04-04T03:40:00+10:30"}},
		// Chatham 2026: +12:45/+13:45. 03:45 +1345 -> 02:45 +1245 on Apr 5;
		// 02:45 +1245 -> 03:45 +1345 on Sep 27.
		{"Pacific/Chatham", "0 3 * * *", "2026-09-26T12:00:00+12:45",
			[]string{"2026-09-27T03:45:00+13:45", "2026-09-28T03:00:00+13:45"}},
		{"Pacific/Chatham", "0,30 * * * *", "2026-09-27T02:20:00+12:45",
			[]string{"2026-09-27T02:30:00+12:45", "2026-09-27T04:00:00+13:45"}},
		{"Pacific/Chatham", "0 3 * * *", "2026-04-04T12:00:00+13:45",
			[]string{"2026-04-05T03:00:00+13:45", "2026-04-06T03:00:00+12:45"}},
		{"Pacific/Chatham", "0,30 3 * * *", "2026-04-05T02:50:00+13:45",
			[]string{"2026-04-05T03:00:00+13:45", "2026-04-05T03:30:00+13:45", "2026-04-05T03:00:00+12:45",
				"2026-04-05T03:30:00+12:45", "2026-04-06T03:00:00+12:45"}},
		// Chatham 2027: Apr 4 and Sep 26.
		{"Pacific/Chatham", "15 3 * * *", "2027-09-25T12:00:00+12:45",
			[]string{"2027-09-26T03:45:00+13:45", "2027-09-27T03:15:00+13:45"}},
		{"Pacific/Chatham", "15 3-4 * * *", "2027-09-25T12:00:00+12:45",
			[]string{"2027-09-26T04:15:00+13:45", "2027-09-27T03:15:00+13:45"}},
		{"Pacific/Chatham", "*/30 3 * * *", "2027-04-04T03:20:00+13:45",
			[]string{"2027-04-04T03:30:00+13:45", "2027-04-04T03:00:00+12:45", "2027-04-04T03:30:00+12:45"}},
		// Havana 2026: the day starts at 01:00 on Mar 8 (00:00 -> 01:00);
		// 01:00 CDT -> 00:00 CST on Nov 1.
		{"America/Havana", "0 0 * * *", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"}},
		{"America/Havana", "15,45 0 * * *", "2026-03-07T23:50:00-05:00", // no hour 0 on Mar 8
			[]string{"2026-03-09T00:15:00-04:00", "2026-03-09T00:45:00-04:00"}},
		{"America/Havana", "0,30 0,1 * * *", "2026-03-07T23:45:00-05:00",
			[]string{"2026-03-08T01:00:00-04:00", "2026-03-08T01:30:00-04:00"}},
		{"America/Havana", "30 0 * * *", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T00:30:00-04:00", "2026-11-02T00:30:00-05:00"}},
		{"America/Havana", "0 0 * * *", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"}},
		{"America/Havana", "*/30 0 * * *", "2026-10-31T23:50:00-04:00",
			[]string{"2026-11-01T00:00:00-04:00", "2026-11-01T00:30:00-04:00", "2026-11-01T00:00:00-05:00",
				"2026-11-01T00:30:00-05:00", "2026-11-02T00:00:00-05:00"}},
		// Havana 2027: Mar 14 and Nov 7.
		{"America/Havana", "@daily", "2027-03-13T12:00:00-05:00",
			[]string{"2027-03-14T01:00:00-04:00", "2027-03-15T00:00:00-04:00"}},
		{"America/Havana", "@hourly", "2027-03-13T22:30:00-05:00",
			[]string{"2027-03-13T23:00:00-05:00", "2027-03-14T01:00:00-04:00", "2027-03-14T02:00:00-04:00"}},
		{"America/Havana", "@hourly", "2027-11-06T23:30:00-04:00",
			[]string{"2027-11-07T00:00:00-04:00", "2027-11-07T00:00:00-05:00", "2027-11-07T01:00:00-05:00"}},
		// Santiago 2026: Saturday 24:00 -> 23:00 on Apr 4 (the hour repeats before
		// midnight); the day starts at 01:00 on Sep 6.
		{"America/Santiago", "30 23 * * *", "2026-04-04T12:00:00-03:00",
			[]string{"2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"}},
		{"America/Santiago", "0,30 23 * * *", "2026-04-04T22:45:00-03:00",
			[]string{"2026-04-04T23:00:00-03:00", "2026-04-04T23:30:00-03:00", "2026-04-04T23:00:00-04:00",
				"2026-04-04T23:30:00-04:00", "2026-04-05T23:00:00-04:00"}},
		{"America/Santiago", "0 0 * * *", "2026-04-04T12:00:00-03:00",
			[]string{"2026-04-05T00:00:00-04:00"}},
		{"America/Santiago", "0 0 * * *", "2026-09-05T12:00:00-04:00",
			[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		{"America/Santiago", "*/30 0-1 * * *", "2026-09-05T12:00:00-04:00",
			[]string{"2026-09-06T01:00:00-03:00", "2026-09-06T01:30:00-03:00", "2026-09-07T00:00:00-03:00"}},
		// Santiago 2027: Apr 3 and Sep 5.
		{"America/Santiago", "0 23 * * SAT", "2027-04-03T12:00:00-03:00",
			[]string{"2027-04-03T23:00:00-03:00", "2027-04-10T23:00:00-04:00"}},
		{"America/Santiago", "0 23 * * *", "2027-04-03T12:00:00-03:00",
			[]string{"2027-04-03T23:00:00-03:00", "2027-04-04T23:00:00-04:00"}},
		{"America/Santiago", "0 22,23 * * SAT", "2027-04-03T12:00:00-03:00",
			[]string{"2027-04-03T22:00:00-03:00", "2027-04-03T23:00:00-03:00", "2027-04-03T23:00:00-04:00"}},
		{"America/Santiago", "0 0 5 9 *", "2027-01-01T00:00:00-03:00",
			[]string{"2027-09-05T01:00:00-03:00", "2028-09-05T00:00:00-03:00"}},
		{"America/Santiago", "0 0-1 5 9 *", "2027-01-01T00:00:00-03:00",
			[]string{"2027-09-05T01:00:00-03:00", "2028-09-05T00:00:00-03:00"}},
		// Sao Paulo before 2019: midnight transitions both ways.
		{"America/Sao_Paulo", "0 0 * * *", "2018-11-03T12:00:00-03:00",
			[]string{"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
		{"America/Sao_Paulo", "15 23 * * *", "2018-02-17T12:00:00-02:00",
			[]string{"2018-02-17T23:15:00-02:00", "2018-02-18T23:15:00-03:00"}},
		// Apia skipped 2011-12-30 entirely: 23:59:59 -10 on the 29th -> 00:00 +14 on the 31st.
		{"Pacific/Apia", "0 12 * * *", "2011-12-29T13:00:00-10:00",
			[]string{"2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"}},
		{"Pacific/Apia", "0 0 * * *", "2011-12-29T12:00:00-10:00", // the 30th and the 31st share one fire
			[]string{"2011-12-31T00:00:00+14:00", "2012-01-01T00:00:00+14:00"}},
		{"Pacific/Apia", "0 0 30 12 *", "2011-06-01T00:00:00-11:00",
			[]string{"2011-12-31T00:00:00+14:00", "2012-12-30T00:00:00+14:00"}},
		{"Pacific/Apia", "0 6 * * *", "2011-12-29T07:00:00-10:00",
			[]string{"2011-12-31T00:00:00+14:00", "2011-12-31T06:00:00+14:00"}},
		{"Pacific/Apia", "0 */6 * * *", "2011-12-29T19:00:00-10:00", // the 30th does not exist
			[]string{"2011-12-31T00:00:00+14:00", "2011-12-31T06:00:00+14:00"}},
	}
	for _, c := range cases {
		s := Schedule{Expr: mustParse(t, c.expr), Location: mustLoc(t, c.zone)}
		got := chain(t, s, rfc(t, c.after), len(c.want))
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s %q after %s:\n got %v\nwant %v", c.zone, c.expr, c.after, got, c.want)
		}
	}
}

var dstZones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Havana",
	"America/Santiago", "America/Sao_Paulo", "Asia/Beirut", "Pacific/Apia", "Asia/Kolkata",
	"Europe/London", "Australia/Adelaide", "America/St_Johns", "Pacific/Chatham", "Africa/Casablanca",
	"Asia/Tehran", "Europe/Dublin", "Antarctica/Troll",
}

// refFixed states which expressions are fixed-time: one value in each of the second,
// minute and hour fields.
func refFixed(c *cronExpr) bool {
	return bits.OnesCount64(c.sec) == 1 && bits.OnesCount64(c.min) == 1 && bits.OnesCount32(c.hour) == 1
}

// refFires is an independent statement of the DST rules, by instant. An interval
// expression fires at t when t's wall reading matches. A fixed-time one fires at t when
// t's wall reading matches and no earlier instant showed that reading, or when t ends a
// gap that skipped a matching reading.
func refFires(c *cronExpr, loc *time.Location, t time.Time) bool {
	w := t.In(loc)
	if !refFixed(c) {
		return refMatches(c, w)
	}
	if refMatches(c, w) && !refShownBefore(loc, t) {
		return true
	}
	prev := t.Add(-time.Second).In(loc)
	gapStart := wallOf(prev) + 1
	for u := gapStart; u < wallOf(w); u++ {
		if refMatches(c, time.Unix(u, 0).UTC()) {
			return true
		}
	}
	return false
}

// wallOf returns t's wall clock reading as seconds, read as if UTC.
func wallOf(t time.Time) int64 {
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

// refShownBefore reports whether some instant within two days before t showed t's wall
// reading, trying each offset in use during that time.
func refShownBefore(loc *time.Location, t time.Time) bool {
	w := wallOf(t.In(loc))
	seen := map[int]bool{}
	for x := t.Add(-48 * time.Hour); x.Before(t); x = x.Add(15 * time.Minute) {
		_, off := x.In(loc).Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		cand := time.Unix(w-int64(off), 0)
		if cand.Before(t) && wallOf(cand.In(loc)) == w {
			return true
		}
	}
	return false
}

// refMatches checks a wall reading (a time whose fields are the wall clock) against the
// expression, with calendar facts from the time package.
func refMatches(c *cronExpr, w time.Time) bool {
	if c.sec&(1<<w.Second()) == 0 || c.min&(1<<w.Minute()) == 0 || c.hour&(1<<w.Hour()) == 0 ||
		c.month&(1<<int(w.Month())) == 0 {
		return false
	}
	y, m, d := w.Date()
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	wd := int(w.Weekday())
	weekdayNear := func(n int) int {
		if n > last {
			return -1
		}
		switch time.Date(y, m, n, 0, 0, 0, 0, time.UTC).Weekday() {
		case time.Saturday:
			if n == 1 {
				return 3
			}
			return n - 1
		case time.Sunday:
			if n == last {
				return n - 2
			}
			return n + 1
		}
		return n
	}
	domOK := c.dom&(1<<d) != 0 || (c.domLW && d == weekdayNear(last))
	for n := 0; n <= 30; n++ {
		domOK = domOK || (c.domLast&(1<<n) != 0 && d == last-n)
	}
	for n := 1; n <= 31; n++ {
		domOK = domOK || (c.domW&(1<<n) != 0 && d == weekdayNear(n))
	}
	dowOK := c.dow&(1<<wd) != 0 || (c.dowLast&(1<<wd) != 0 && d > last-7)
	for n := 1; n <= 5; n++ {
		dowOK = dowOK || (c.dowNth[wd]&(1<<n) != 0 && d > (n-1)*7 && d <= n*7)
	}
	if c.domStar || c.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// refNext scans instants for at most `window`: every second, or every minute when only
// second 0 matches (modern offsets and transitions are whole minutes).
func refNext(c *cronExpr, loc *time.Location, after time.Time, window time.Duration) (time.Time, bool) {
	step := time.Second
	if c.sec == 1 {
		step = time.Minute
	}
	t := after.Truncate(step).Add(step)
	for end := after.Add(window); !t.After(end); t = t.Add(step) {
		if refFires(c, loc, t) {
			return t, true
		}
	}
	return time.Time{}, false
}

// Compare Next with the reference scan near real transitions of many zones.
func TestNextMatchesReferenceAroundTransitions(t *testing.T) {
	exprs := []string{"*/7 * * * *", "30 2 * * *", "0 0 * * *", "15,45 0-3 * * *", "0 23 * * *",
		"*/20 * 0-2 * * *", "0 30 1 * * *", "59 59 23 * * *", "0 0 L * *", "0 * * * *", "30 */10 * * * *",
		"45 2 * * *", "0 0,1 * * *"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zone := range dstZones {
		loc := mustLoc(t, zone)
		// Collect transitions between 1990 and 2060 (after 2037 Go derives them from the
		// zone's TZ footer rule).
		var trans []time.Time
		for x := rfc(t, "1990-01-01T00:00:00Z"); x.Year() < 2060 && len(trans) < 300; {
			_, end := x.In(loc).ZoneBounds()
			if end.IsZero() {
				break
			}
			trans = append(trans, end)
			x = end
		}
		for i := 0; i < 5 && len(trans) > 0; i++ {
			tr := trans[rng.IntN(len(trans))]
			for _, es := range exprs {
				c := mustParse(t, es).(*cronExpr)
				window := 26 * time.Hour
				if c.sec != 1 {
					window = 4 * time.Hour
				}
				s := Schedule{Expr: c, Location: loc}
				after := tr.Add(time.Duration(rng.IntN(6*3600)-3*3600) * time.Second)
				for k := 0; k < 3; k++ {
					want, wok := refNext(c, loc, after, window)
					got, gok := s.Next(after)
					if gok && !got.After(after.Add(window)) || wok {
						if gok != wok || !got.Equal(want) {
							t.Fatalf("%s %q Next(%v) = %v, %v; reference %v, %v", zone, es, after.In(loc), got.In(loc), gok, want.In(loc), wok)
						}
					}
					if !gok {
						break
					}
					after = got
				}
			}
		}
	}
}

// Regression (found by FuzzPlan): Go's ZoneBounds ends a period a day early on the last
// UTC day of a leap year served by a zone's TZ footer rule (golang/go#81583). Spans must
// still contain their instant, days must still end, and plans must terminate.
func TestZoneBoundsLeapYearWorkaround(t *testing.T) {
	for _, c := range []struct{ zone, at string }{
		{"Australia/Adelaide", "2044-12-31T12:00:00Z"},
		{"Europe/Warsaw", "2040-12-31T12:00:00Z"},
		{"America/Santiago", "2044-12-31T23:59:59Z"},
	} {
		loc := mustLoc(t, c.zone)
		x := rfc(t, c.at)
		if sp := spanAt(loc, x.Unix()); sp.start > x.Unix() || sp.end <= x.Unix() {
			t.Errorf("%s: span [%d, %d) does not contain %d", c.zone, sp.start, sp.end, x.Unix())
		}
		local := x.In(loc)
		y, m, d := local.Date()
		want := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
		if got := dayEnd(x, loc); !got.Equal(want) {
			t.Errorf("%s: dayEnd(%v) = %v, want %v", c.zone, local, got, want)
		}
		s := Schedule{Expr: mustParse(t, "0 * * * *"), Location: loc}
		got := chain(t, s, x.Add(-3*time.Hour), 6)
		for i := 1; i < len(got); i++ {
			if rfc(t, got[i]).Sub(rfc(t, got[i-1])) != time.Hour {
				t.Errorf("%s: hourly chain broken: %v", c.zone, got)
				break
			}
		}
	}
	// The fuzz finding itself: a plan across the new year in Adelaide, 2044.
	cal, _ := ParseCalendar([]string{"2045-01-02"})
	s := Schedule{Expr: mustParse(t, "* 0 1 1 *"), Location: mustLoc(t, "Australia/Adelaide"), Blackout: cal}
	next := rfc(t, "2045-01-01T00:00:00+10:30")
	pl := s.Plan(next, next.Add(30*time.Minute), Policy{Misfire: MisfireRunAll})
	checkPlan(t, s, next, next.Add(30*time.Minute), Policy{Misfire: MisfireRunAll}, pl)
}

// The defects issue 11 reported, in New York, as the rule now settles them: interval
// expressions fire at every real instant that matches, nothing else, counted or walked.
func TestNextDSTIntervalExamples(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	// Every instant from `from` (inclusive) to `to` (exclusive), by Next and by count.
	between := func(expr, from, to string) []time.Time {
		t.Helper()
		s := Schedule{Expr: mustParse(t, expr), Location: ny}
		f, e := rfc(t, from), rfc(t, to)
		var got []time.Time
		for o, ok := s.Next(f.Add(-time.Second)); ok && o.Before(e); o, ok = s.Next(o) {
			got = append(got, o)
		}
		q := s.Expr.newSeq(&s)
		if n, last := q.count(f, e.Add(-time.Second)); n != int64(len(got)) || len(got) > 0 && !last.Equal(got[len(got)-1]) {
			t.Errorf("%s: count says %d ending %v, Next walked %d", expr, n, last, len(got))
		}
		for k, o := range got {
			if x, ok := q.nth(f, int64(k+1)); !ok || !x.Equal(o) {
				t.Errorf("%s: nth(%d) = %v, Next walked %v", expr, k+1, x, o)
			}
		}
		return got
	}

	// Fall back: 01:00-01:59 happens twice, and fires twice.
	if got := between("* * * * *", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"); len(got) != 120 {
		t.Errorf("* * * * * fired %d times between 05:00Z and 07:00Z, want 120", len(got))
	}
	// Counting the rest of a day must stop where its zone period ends.
	if got := between("* 1,3 * * *", "2026-11-01T04:00:00Z", "2026-11-01T09:00:00Z"); len(got) != 180 {
		t.Errorf("* 1,3 * * * fired %d times, want 180", len(got))
	}
	got := between("0 * * * *", "2026-11-01T03:00:00Z", "2026-11-01T09:00:00Z")
	for i := 1; i < len(got); i++ {
		if d := got[i].Sub(got[i-1]); d != time.Hour {
			t.Errorf("0 * * * *: %v after %v, want one hour", got[i], got[i-1])
		}
	}
	// Spring forward: 02:00-02:59 does not exist and fires nothing, not even at 03:00.
	for _, c := range []struct {
		expr  string
		n     int                    // fires in the 23-hour local day
		wrong func(l time.Time) bool // a wall time the expression does not match
	}{
		{"15,45 * * * *", 46, func(l time.Time) bool { return l.Minute() == 0 }},
		{"30 */10 * * * *", 138, func(l time.Time) bool { return l.Second() != 30 }},
		{"*/15 * * * *", 92, func(l time.Time) bool { return l.Minute()%15 != 0 }},
	} {
		got := between(c.expr, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z")
		if len(got) != c.n {
			t.Errorf("%s fired %d times on 2026-03-08, want %d", c.expr, len(got), c.n)
		}
		for _, o := range got {
			if l := o.In(ny); c.wrong(l) || l.Hour() == 2 {
				t.Errorf("%s fired at %v", c.expr, l)
			}
		}
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		expr string
		kind Kind
	}{
		{"30 2 * * *", KindFixedTime}, {"0 0 7 * * MON-FRI", KindFixedTime}, {"@daily", KindFixedTime},
		{"@weekly", KindFixedTime}, {"@monthly", KindFixedTime}, {"@yearly", KindFixedTime},
		{"0 0 L * *", KindFixedTime}, {"*/60 3 * * *", KindFixedTime}, {"0 2-2 * * *", KindFixedTime},
		{"30 2 * JAN,JUL *", KindFixedTime},
		{"@hourly", KindInterval}, {"* * * * *", KindInterval}, {"*/5 2 * * *", KindInterval},
		{"0,30 2 * * *", KindInterval}, {"30 1-2 * * *", KindInterval}, {"* 30 2 * * *", KindInterval},
		{"0-1 30 2 * * *", KindInterval},
		{"@every 1h", KindEvery}, {"at 2026-12-01T07:00:00Z", KindAt},
	} {
		e := mustParse(t, c.expr)
		if got := e.Kind(); got != c.kind {
			t.Errorf("%q: kind %s, want %s", c.expr, got, c.kind)
		}
		if got := mustParse(t, e.String()).Kind(); got != c.kind {
			t.Errorf("canonical %q of %q: kind %s, want %s", e.String(), c.expr, got, c.kind)
		}
	}
}
