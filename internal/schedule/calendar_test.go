package schedule

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCalendar(t *testing.T) {
	c, err := ParseCalendar([]string{"2026-12-25", " *-01-01 ", "*-02-29", "2026-12-25", "2028-02-29"})
	if err != nil {
		t.Fatal(err)
	}
	berlin := mustLoc(t, "Europe/Berlin")
	s := Schedule{Location: berlin, Blackout: c}
	cases := []struct {
		at   string
		want bool
	}{
		{"2026-12-25T00:00:00+01:00", true},
		{"2026-12-24T23:30:00Z", true}, // already the 25th in Berlin
		{"2026-12-25T23:30:00Z", false},
		{"2027-12-25T12:00:00Z", false},
		{"2031-01-01T12:00:00Z", true},
		{"2028-02-29T12:00:00Z", true},
		{"2032-02-29T12:00:00Z", true},
		{"2027-02-28T12:00:00Z", false},
		{"2027-03-01T12:00:00Z", false},
	}
	for _, cs := range cases {
		if got := s.BlackedOut(rfc(t, cs.at)); got != cs.want {
			t.Errorf("BlackedOut(%s) = %v, want %v", cs.at, got, cs.want)
		}
	}
	if (Schedule{}).BlackedOut(rfc(t, "2026-12-25T00:00:00Z")) {
		t.Error("the zero Calendar blacks out a date")
	}
	if c, err := ParseCalendar(nil); err != nil || !c.empty() {
		t.Errorf("ParseCalendar(nil) = %v, %v", c, err)
	}
}

func TestParseCalendarErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"2026-02-30", "day 30 out of range 01-28 for February 2026"},
		{"2026-04-31", "April 2026"},
		{"2026-02-29", "not a date"},
		{"*-13-01", "month 13 out of range 01-12"},
		{"*-00-01", "month 00 out of range"},
		{"*-02-30", "day 30 out of range 01-29 for February"},
		{"2026-1-5", "expected YYYY-MM-DD"},
		{"26-01-05", "expected YYYY-MM-DD"},
		{"2026/01/05", "expected YYYY-MM-DD"},
		{"", "expected YYYY-MM-DD"},
		{"0000-01-01", "year 0000"},
		{"2026-01-05T00:00:00Z", "expected YYYY-MM-DD"},
		{"*-01-00", "day 00 out of range"},
	}
	for _, c := range cases {
		_, err := ParseCalendar([]string{"2026-01-01", c.in})
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseCalendar(%q) = %v, want a *ParseError", c.in, err)
			continue
		}
		if pe.Field != "blackout" || pe.Value != c.in {
			t.Errorf("ParseCalendar(%q): Field, Value = %q, %q", c.in, pe.Field, pe.Value)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "blackout date") {
			t.Errorf("ParseCalendar(%q) error %q does not mention %q", c.in, err, c.want)
		}
	}
}
