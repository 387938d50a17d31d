package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, s string) Expr {
	t.Helper()
	e, err := ParseExpr(s)
	if err != nil {
		t.Fatalf("ParseExpr(%q): %v", s, err)
	}
	return e
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return l
}

func rfc(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

// chain returns up to n successive occurrences after `after`, as RFC 3339 in the
// schedule's location, checking that they strictly increase.
func chain(t testing.TB, s Schedule, after time.Time, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		o, ok := s.Next(after)
		if !ok {
			break
		}
		if !o.After(after) {
			t.Fatalf("Next(%v) = %v, not after", after, o)
		}
		out = append(out, o.Format(time.RFC3339Nano))
		after = o
	}
	return out
}

func dates(days ...string) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d + "T00:00:00Z"
	}
	return out
}

func TestNextCron(t *testing.T) {
	cases := []struct {
		expr, after string
		want        []string
	}{
		{"* * * * * *", "2026-01-01T00:00:00.5Z", []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"}},
		{"* * * * *", "2026-01-01T00:00:00Z", []string{"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"}},
		{"* * * * *", "2026-01-01T00:00:59.999Z", []string{"2026-01-01T00:01:00Z"}},
		{"*/20 * * * * *", "2026-01-01T00:00:50Z", []string{"2026-01-01T00:01:00Z", "2026-01-01T00:01:20Z", "2026-01-01T00:01:40Z"}},
		{"30 15 10 * * *", "2026-01-01T10:15:30Z", []string{"2026-01-02T10:15:30Z", "2026-01-03T10:15:30Z"}},
		{"59 59 23 31 12 *", "2026-06-01T00:00:00Z", []string{"2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z"}},
		{"0 9 * * MON-FRI", "2026-01-02T09:00:00Z", []string{"2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"}},
		{"0 12 * jan,JUL sun", "2026-01-20T00:00:00Z", []string{"2026-01-25T12:00:00Z", "2026-07-05T12:00:00Z"}},
		{"0 0 * * 7", "2026-01-01T00:00:00Z", dates("2026-01-04", "2026-01-11")},
		{"0 0 */2 * *", "2026-01-29T00:00:00Z", dates("2026-01-31", "2026-02-01", "2026-02-03")},
		{"0 0 L * *", "2026-01-15T00:00:00Z", dates("2026-01-31", "2026-02-28", "2026-03-31")},
		{"0 0 L * *", "2028-02-01T00:00:00Z", dates("2028-02-29", "2028-03-31")},
		{"0 0 L-3 * *", "2026-01-01T00:00:00Z", dates("2026-01-28", "2026-02-25", "2026-03-28")},
		{"0 0 L-30 * *", "2026-01-05T00:00:00Z", dates("2026-03-01", "2026-05-01")},
		{"0 0 LW * *", "2026-01-01T00:00:00Z", dates("2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30")},
		{"0 0 1W * *", "2026-01-01T00:00:00Z", dates("2026-02-02", "2026-03-02", "2026-04-01", "2026-05-01", "2026-06-01", "2026-07-01", "2026-08-03")},
		{"0 0 15W * *", "2026-01-01T00:00:00Z", dates("2026-01-15", "2026-02-16", "2026-03-16", "2026-04-15")},
		{"0 0 31W * *", "2026-01-01T00:00:00Z", dates("2026-01-30", "2026-03-31", "2026-05-29", "2026-07-31")},
		{"0 0 * * 5L", "2026-01-01T00:00:00Z", dates("2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24")},
		{"0 0 ? * SUNL", "2026-01-01T00:00:00Z", dates("2026-01-25", "2026-02-22", "2026-03-29")},
		{"0 0 * * MON#1", "2026-01-01T00:00:00Z", dates("2026-01-05", "2026-02-02", "2026-03-02")},
		{"0 0 * * 1#5", "2026-01-01T00:00:00Z", dates("2026-03-30", "2026-06-29", "2026-08-31", "2026-11-30")},
		// Both day fields restricted: either matches (Vixie).
		{"0 0 13 * FRI", "2026-02-01T00:00:00Z", dates("2026-02-06", "2026-02-13", "2026-02-20", "2026-02-27", "2026-03-06")},
		{"0 0 1-7 * MON", "2026-02-28T00:00:00Z", dates("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04",
			"2026-03-05", "2026-03-06", "2026-03-07", "2026-03-09", "2026-03-16")},
		{"0 0 29 2 MON", "2027-03-01T00:00:00Z", dates("2028-02-07", "2028-02-14", "2028-02-21", "2028-02-28", "2028-02-29", "2029-02-05")},
		// One restricted: both must match, the other being *.
		{"0 0 13 * *", "2026-01-13T00:00:00Z", dates("2026-02-13", "2026-03-13")},
		{"0 0 */1 * 0-6", "2026-01-01T00:00:00Z", dates("2026-01-02", "2026-01-03")},
		{"0 0 L * 0L", "2026-01-01T00:00:00Z", dates("2026-01-25", "2026-01-31", "2026-02-22", "2026-02-28")},
		// Leap years.
		{"0 0 29 2 *", "2026-03-01T00:00:00Z", dates("2028-02-29", "2032-02-29")},
		{"0 0 29 2 *", "2096-03-01T00:00:00Z", dates("2104-02-29")}, // 2100 is not a leap year
		{"0 0 28 2 *", "2028-02-28T00:00:00Z", dates("2029-02-28")},
		{"@yearly", "2026-01-01T00:00:00Z", dates("2027-01-01", "2028-01-01")},
		{"@monthly", "2026-01-31T00:00:00Z", dates("2026-02-01", "2026-03-01")},
		{"@weekly", "2026-01-01T00:00:00Z", dates("2026-01-04", "2026-01-11")},
		{"@daily", "2026-01-01T23:59:59Z", dates("2026-01-02", "2026-01-03")},
		{"@hourly", "2026-01-01T23:30:00Z", []string{"2026-01-02T00:00:00Z", "2026-01-02T01:00:00Z"}},
		// The end of the supported range.
		{"0 0 1 1 *", "9998-06-01T00:00:00Z", dates("9999-01-01")},
	}
	for _, c := range cases {
		s := Schedule{Expr: mustParse(t, c.expr)}
		got := chain(t, s, rfc(t, c.after), len(c.want)+1)
		if len(got) > len(c.want) {
			got = got[:len(c.want)]
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q after %s:\n got %v\nwant %v", c.expr, c.after, got, c.want)
		}
	}
}

func TestNextLocalZone(t *testing.T) {
	tokyo := mustLoc(t, "Asia/Tokyo")
	s := Schedule{Expr: mustParse(t, "0 9 * * *"), Location: tokyo}
	got := chain(t, s, rfc(t, "2026-01-01T00:00:00Z"), 2)
	want := []string{"2026-01-02T09:00:00+09:00", "2026-01-03T09:00:00+09:00"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNextBounds(t *testing.T) {
	e := mustParse(t, "0 * * * *")
	s := Schedule{Expr: e, Start: rfc(t, "2026-01-01T10:00:00Z"), End: rfc(t, "2026-01-01T12:00:00Z")}
	got := chain(t, s, rfc(t, "2025-01-01T00:00:00Z"), 5)
	want := []string{"2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	// A fractional Start still admits the next whole-second occurrence only.
	s = Schedule{Expr: e, Start: rfc(t, "2026-01-01T10:00:00.1Z")}
	if o, _ := s.Next(time.Time{}); !o.Equal(rfc(t, "2026-01-01T11:00:00Z")) {
		t.Errorf("Next with fractional Start = %v", o)
	}
	if _, ok := (Schedule{Expr: e, End: rfc(t, "2026-01-01T10:00:00Z")}).Next(rfc(t, "2026-01-01T10:00:00Z")); ok {
		t.Error("Next at End returned an occurrence")
	}
	if _, ok := (Schedule{}).Next(time.Now()); ok {
		t.Error("a Schedule without Expr has an occurrence")
	}
}

func TestNextGivesUp(t *testing.T) {
	// Valid, but February has a fifth Monday only once in 28 years (leap years starting on
	// a Monday): beyond the ten-year search from 2029.
	s := Schedule{Expr: mustParse(t, "0 0 * 2 1#5")}
	if o, ok := s.Next(rfc(t, "2016-03-01T00:00:00Z")); ok {
		t.Errorf("Next = %v, want none within ten years", o)
	}
	if o, ok := s.Next(rfc(t, "2043-01-01T00:00:00Z")); !ok || !o.Equal(rfc(t, "2044-02-29T00:00:00Z")) {
		t.Errorf("Next = %v, %v; want 2044-02-29", o, ok)
	}
	// Past the supported range.
	if _, ok := (Schedule{Expr: mustParse(t, "* * * * *")}).Next(rfc(t, "9999-12-31T23:59:00Z")); ok {
		t.Error("an occurrence after year 9999")
	}
	// Before it: the search starts at year 1.
	if o, ok := (Schedule{Expr: mustParse(t, "0 0 1 1 *")}).Next(time.Unix(minInstant-1e9, 0)); !ok || o.Year() != 1 {
		t.Errorf("Next before year 1 = %v, %v", o, ok)
	}
}

func TestNextEvery(t *testing.T) {
	e := mustParse(t, "@every 90m")
	ny := mustLoc(t, "America/New_York")
	cases := []struct {
		name  string
		s     Schedule
		after string
		want  []string
	}{
		{"epoch anchor", Schedule{Expr: e}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z"}},
		{"anchor", Schedule{Expr: e, Anchor: rfc(t, "2026-01-01T00:10:00Z")}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T00:10:00Z", "2026-01-01T01:40:00Z"}},
		{"anchor in the future, negative k", Schedule{Expr: e, Anchor: rfc(t, "2030-01-01T00:10:00Z")}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T00:10:00Z", "2026-01-01T01:40:00Z"}},
		{"start is the anchor", Schedule{Expr: e, Start: rfc(t, "2026-01-01T00:05:00Z"), Anchor: rfc(t, "2020-01-01T00:00:00Z")},
			"2025-01-01T00:00:00Z", []string{"2026-01-01T00:05:00Z", "2026-01-01T01:35:00Z"}},
		{"end", Schedule{Expr: e, End: rfc(t, "2026-01-01T03:00:00Z")}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z"}},
		{"absolute across DST", Schedule{Expr: mustParse(t, "@every 1h"), Location: ny}, "2026-11-01T00:30:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"anchor 1000 years away", Schedule{Expr: mustParse(t, "@every 7s"), Anchor: rfc(t, "3026-01-01T00:00:00Z")},
			"2026-01-01T00:00:00Z", []string{"2026-01-01T00:00:04Z", "2026-01-01T00:00:11Z"}}, // 365242 days ≡ 4s (mod 7s)
	}
	for _, c := range cases {
		got := chain(t, c.s, rfc(t, c.after), len(c.want))
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Sub-second intervals keep their phase.
	s := Schedule{Expr: mustParse(t, "@every 10ms")}
	if o, _ := s.Next(rfc(t, "2026-01-01T00:00:00.015Z")); !o.Equal(rfc(t, "2026-01-01T00:00:00.02Z")) {
		t.Errorf("@every 10ms Next = %v", o)
	}
}

func TestNextAt(t *testing.T) {
	e := mustParse(t, "at 2026-12-01T07:00:00Z")
	at := rfc(t, "2026-12-01T07:00:00Z")
	s := Schedule{Expr: e}
	if o, ok := s.Next(at.Add(-time.Nanosecond)); !ok || !o.Equal(at) {
		t.Errorf("Next before = %v, %v", o, ok)
	}
	if _, ok := s.Next(at); ok {
		t.Error("Next at the time itself returned it")
	}
	if _, ok := (Schedule{Expr: e, End: at.Add(-time.Second)}).Next(time.Time{}); ok {
		t.Error("at after End fired")
	}
	if _, ok := (Schedule{Expr: e, Start: at.Add(time.Second)}).Next(time.Time{}); ok {
		t.Error("at before Start fired")
	}
}

func BenchmarkNextEverySecond(b *testing.B) {
	s := Schedule{Expr: mustParse(b, "* * * * * *"), Location: mustLoc(b, "Europe/Berlin")}
	after := rfc(b, "2026-03-29T01:59:58+01:00")
	for b.Loop() {
		s.Next(after)
	}
}

func BenchmarkNextLeapDay(b *testing.B) {
	s := Schedule{Expr: mustParse(b, "0 0 29 2 *"), Location: mustLoc(b, "America/New_York")}
	after := rfc(b, "2097-03-01T00:00:00Z")
	for b.Loop() {
		s.Next(after)
	}
}

func BenchmarkNextNeverWithinLimit(b *testing.B) {
	s := Schedule{Expr: mustParse(b, "0 0 * 2 1#5"), Location: mustLoc(b, "America/New_York")}
	after := rfc(b, "2016-03-01T00:00:00Z")
	for b.Loop() {
		s.Next(after)
	}
}

// Next must not scan: a generous bound that a per-second scan across years would break.
func TestNextIsFast(t *testing.T) {
	s := Schedule{Expr: mustParse(t, "0 0 29 2 *"), Location: mustLoc(t, "Europe/Berlin")}
	start := time.Now()
	for i := 0; i < 1000; i++ {
		if _, ok := s.Next(rfc(t, "2097-03-01T00:00:00Z")); !ok {
			t.Fatal("no occurrence")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 Next calls took %v", d)
	}
}
