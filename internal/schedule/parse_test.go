package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseExprCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"* * * * *", "* * * * *"},
		{"  0   9\t* * 1-5  ", "0 9 * * 1-5"},
		{"0 * * * * *", "* * * * *"}, // second 0 is the 5-field default
		{"*/5 * * * * *", "*/5 * * * * *"},
		{"*/15 9-17 * * MON-FRI", "*/15 9-17 * * 1-5"},
		{"0 0 1 jan,Jul *", "0 0 1 1,7 *"},
		{"0 0 ? * sun", "0 0 * * 0"},
		{"0 0 * * 7", "0 0 * * 0"},
		{"0 0 * * 5-7", "0 0 * * 0,5,6"},
		{"0 0 * * FRI-SUN", "0 0 * * 0,5,6"},
		{"0 0 * * 0-6", "0 0 * * 0-6"}, // restricted, unlike *
		{"0 0 1-31 * *", "0 0 1-31 * *"},
		{"0 0 */2 * *", "0 0 */2 * *"},
		{"0 0 * * */2", "0 0 * * */2"},
		{"5/20 * * * *", "5-45/20 * * * *"},
		{"0-59/1 * * * *", "* * * * *"},
		{"1,2,3,5,7,8 * * * *", "1-3,5,7,8 * * * *"},
		{"0 0 L * *", "0 0 L * *"},
		{"0 0 l-3 * *", "0 0 L-3 * *"},
		{"0 0 L-0 * *", "0 0 L * *"},
		{"0 0 15w * *", "0 0 15W * *"},
		{"0 0 lw * *", "0 0 LW * *"},
		{"0 0 1,15,L,LW,3W * *", "0 0 1,15,L,3W,LW * *"},
		{"0 0 * * 5L", "0 0 * * 5L"},
		{"0 0 * * fril", "0 0 * * 5L"},
		{"0 0 * * 7L", "0 0 * * 0L"},
		{"0 0 * * MON#2,1#4", "0 0 * * 1#2,1#4"},
		{"0 0 1 * MON", "0 0 1 * 1"},
		{"@yearly", "0 0 1 1 *"},
		{"@annually", "0 0 1 1 *"},
		{"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"},
		{"@DAILY", "0 0 * * *"},
		{"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
		{"@every 90s", "@every 1m30s"},
		{" @every   1h30m ", "@every 1h30m0s"},
		{"@every 10ms", "@every 10ms"},
		{"at 2026-12-01T07:00:00Z", "at 2026-12-01T07:00:00Z"},
		{"AT 2026-12-01T08:00:00+01:00", "at 2026-12-01T07:00:00Z"},
		{"at 2026-12-01T07:00:00.5Z", "at 2026-12-01T07:00:00.5Z"},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.in)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("ParseExpr(%q).String() = %q, want %q", c.in, got, c.want)
		}
		checkRoundTrip(t, e)
	}
}

// checkRoundTrip asserts that String() re-parses to an equivalent expression.
func checkRoundTrip(t *testing.T, e Expr) {
	t.Helper()
	s := e.String()
	e2, err := ParseExpr(s)
	if err != nil {
		t.Fatalf("canonical %q does not parse: %v", s, err)
	}
	if !equivalent(e, e2) {
		t.Fatalf("canonical %q parses to a different expression (%q)", s, e2.String())
	}
}

func equivalent(a, b Expr) bool {
	switch a := a.(type) {
	case *cronExpr:
		b, ok := b.(*cronExpr)
		return ok && *a == *b
	case *everyExpr:
		b, ok := b.(*everyExpr)
		return ok && a.d == b.d
	case *atExpr:
		b, ok := b.(*atExpr)
		return ok && a.t.Equal(b.t)
	}
	return false
}

func TestParseExprErrors(t *testing.T) {
	cases := []struct {
		in, field, value string
		want             []string // substrings of Error()
	}{
		{"", "expression", "", []string{"empty", "5 cron fields"}},
		{"   ", "expression", "   ", []string{"empty"}},
		{"* * * *", "expression", "* * * *", []string{"5 fields", "or 6", "found 4"}},
		{"* * * * * * *", "expression", "* * * * * * *", []string{"found 7"}},
		{"0 0 32 * *", "day-of-month", "32", []string{`cron field 3 (day-of-month) "32": value 32 out of range 1-31`}},
		{"0 0 0 * *", "day-of-month", "0", []string{"value 0 out of range 1-31"}},
		{"60 * * * *", "minute", "60", []string{"cron field 1 (minute)", "out of range 0-59"}},
		{"* 60 * * * *", "minute", "60", []string{"cron field 2 (minute)"}},
		{"* 24 * * *", "hour", "24", []string{"out of range 0-23"}},
		{"* * * 13 *", "month", "13", []string{"out of range 1-12 or JAN-DEC"}},
		{"* * * FOO *", "month", "FOO", []string{`unknown value "FOO"`, "JAN-DEC"}},
		{"* * * * 8", "day-of-week", "8", []string{"out of range 0-7", "Sunday"}},
		{"* * * * MONDAY", "day-of-week", "MONDAY", []string{"SUN-SAT"}},
		{"x * * * *", "minute", "x", []string{`"x" is not a number`, "0-59"}},
		{"5-3 * * * *", "minute", "5-3", []string{"backwards"}},
		{"*/0 * * * *", "minute", "*/0", []string{"step 0 out of range", "1-60"}},
		{"*/61 * * * *", "minute", "*/61", []string{"step 61"}},
		{"*/x * * * *", "minute", "*/x", []string{"step \"x\" is not a number"}},
		{"1,,2 * * * *", "minute", "1,,2", []string{"empty list element"}},
		{"1, * * * *", "minute", "1,", []string{"empty list element"}},
		{"? * * * *", "minute", "?", []string{"only allowed in day-of-month and day-of-week"}},
		{"* L * * *", "hour", "L", []string{"only allowed in day-of-month"}},
		{"* * * * 1-", "day-of-week", "1-", []string{"missing value"}},
		{"0 0 L-31 * *", "day-of-month", "L-31", []string{"offset 31 out of range 0-30"}},
		{"0 0 32W * *", "day-of-month", "32W", []string{"day 32 out of range 1-31"}},
		{"0 0 W * *", "day-of-month", "W", []string{"nW"}},
		{"0 0 * * L", "day-of-week", "L", []string{"needs a weekday", "5L"}},
		{"0 0 * * 1#6", "day-of-week", "1#6", []string{"occurrence 6 out of range 1-5"}},
		{"0 0 * * 1#0", "day-of-week", "1#0", []string{"out of range 1-5"}},
		{"0 0 * * 9#1", "day-of-week", "9#1", []string{"value 9 out of range"}},
		{"0 0 * * XL", "day-of-week", "XL", []string{"unknown value"}},
		{"0 0 30 2 *", "day-of-month", "30", []string{"cron field 3 (day-of-month)", "never matches", "February has at most 29 days"}},
		{"0 0 31 4 *", "day-of-month", "31", []string{"never matches", "April has at most 30 days"}},
		{"0 0 31 4,6,9,11 *", "day-of-month", "31", []string{"never matches", "none of the selected months"}},
		{"0 0 0 31 2 ?", "day-of-month", "31", []string{"cron field 4 (day-of-month)", "never matches"}},
		{"0 0 31W 2 *", "day-of-month", "31W", []string{"never matches"}},
		{"@reboot", "expression", "@reboot", []string{"unknown macro @reboot"}},
		{"@daily 5", "expression", "@daily 5", []string{"takes no arguments"}},
		{"@every", "every", "", []string{"expected one Go duration"}},
		{"@every 1 h", "every", "1 h", []string{"expected one Go duration"}},
		{"@every 5ms", "every", "5ms", []string{"below the minimum of 10ms"}},
		{"@every 0s", "every", "0s", []string{"below the minimum"}},
		{"@every -1h", "every", "-1h", []string{"below the minimum"}},
		{"@every soon", "every", "soon", []string{"not a Go duration", "1h30m"}},
		{"at", "at", "", []string{"expected one RFC 3339 time"}},
		{"at 2026-12-01T07:00:00", "at", "2026-12-01T07:00:00", []string{"RFC 3339", "UTC offset"}},
		{"at 2026-12-01", "at", "2026-12-01", []string{"RFC 3339"}},
		{"at 2026-12-01T07:00:00Z extra", "at", "2026-12-01T07:00:00Z extra", []string{"expected one"}},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.in)
		if err == nil {
			t.Errorf("ParseExpr(%q) = %q, want an error", c.in, e.String())
			continue
		}
		if e != nil {
			t.Errorf("ParseExpr(%q) returned a non-nil Expr with its error", c.in)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseExpr(%q) error %T is not *ParseError", c.in, err)
			continue
		}
		if pe.Field != c.field || pe.Value != c.value {
			t.Errorf("ParseExpr(%q): Field, Value = %q, %q; want %q, %q", c.in, pe.Field, pe.Value, c.field, c.value)
		}
		if pe.Problem == "" {
			t.Errorf("ParseExpr(%q): empty Problem", c.in)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseExpr(%q) error %q does not mention %q", c.in, err, w)
			}
		}
	}
}

func TestParseErrorUnwrap(t *testing.T) {
	_, err := ParseExpr("at tomorrow")
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v does not wrap the time.Parse cause", err)
	}
}

// Vixie semantics: star fields are those written exactly * or ?.
func TestParseStarFlags(t *testing.T) {
	cases := []struct {
		in               string
		domStar, dowStar bool
	}{
		{"0 0 * * *", true, true},
		{"0 0 ? * ?", true, true},
		{"0 0 */1 * *", false, true},
		{"0 0 1 * *", false, true},
		{"0 0 * * 1", true, false},
		{"0 0 1 * 1", false, false},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.in)
		if err != nil {
			t.Fatal(err)
		}
		ce := e.(*cronExpr)
		if ce.domStar != c.domStar || ce.dowStar != c.dowStar {
			t.Errorf("%q: domStar, dowStar = %v, %v; want %v, %v", c.in, ce.domStar, ce.dowStar, c.domStar, c.dowStar)
		}
	}
}
