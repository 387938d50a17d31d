package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Calendar is a set of blackout dates: specific dates, and month-days repeated every year.
// The zero Calendar blacks out nothing. A Calendar is immutable once parsed.
type Calendar struct {
	days   []int64 // day numbers of specific dates, sorted, unique
	yearly []int   // month*32 + day, sorted, unique
}

// ParseCalendar parses blackout dates, each "YYYY-MM-DD" (that date) or "*-MM-DD" (that
// date every year; *-02-29 applies in leap years only). Errors are *ParseError with Field
// "blackout".
func ParseCalendar(dates []string) (Calendar, error) {
	var c Calendar
	for _, entry := range dates {
		y, m, d, err := parseDate(entry)
		if err != nil {
			return Calendar{}, err
		}
		if y < 0 {
			c.yearly = append(c.yearly, m*32+d)
		} else {
			c.days = append(c.days, daysFromCivil(int64(y), m, d))
		}
	}
	slices.Sort(c.days)
	c.days = slices.Compact(c.days)
	slices.Sort(c.yearly)
	c.yearly = slices.Compact(c.yearly)
	return c, nil
}

// parseDate returns y = -1 for a yearly "*-MM-DD" entry.
func parseDate(entry string) (y, m, d int, err error) {
	fail := func(problem string) (int, int, int, error) {
		return 0, 0, 0, &ParseError{Field: "blackout", Value: entry, Problem: problem}
	}
	s := strings.TrimSpace(entry)
	ys, rest, ok1 := strings.Cut(s, "-")
	ms, ds, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || (ys != "*" && (len(ys) != 4 || !isDigits(ys))) ||
		len(ms) != 2 || !isDigits(ms) || len(ds) != 2 || !isDigits(ds) {
		return fail("expected YYYY-MM-DD (one date) or *-MM-DD (that date every year)")
	}
	y = -1
	if ys != "*" {
		y, _ = strconv.Atoi(ys)
		if y == 0 {
			return fail("year 0000 out of range 0001-9999")
		}
	}
	m, _ = strconv.Atoi(ms)
	d, _ = strconv.Atoi(ds)
	if m < 1 || m > 12 {
		return fail(fmt.Sprintf("month %s out of range 01-12", ms))
	}
	longest := monthLen(2000, m) // a leap year: *-02-29 is allowed
	if y > 0 {
		longest = monthLen(int64(y), m)
	}
	if d < 1 || d > longest {
		when := monthNames[m]
		if y > 0 {
			when += " " + ys
		}
		return fail(fmt.Sprintf("not a date: day %s out of range 01-%d for %s", ds, longest, when))
	}
	return y, m, d, nil
}

func (c Calendar) empty() bool { return len(c.days) == 0 && len(c.yearly) == 0 }

// contains reports whether the civil date y-m-d is blacked out.
func (c Calendar) contains(y, m, d int) bool {
	if _, ok := slices.BinarySearch(c.yearly, m*32+d); ok {
		return true
	}
	_, ok := slices.BinarySearch(c.days, daysFromCivil(int64(y), m, d))
	return ok
}

// containsTime reports whether t's local date in loc is blacked out.
func (c Calendar) containsTime(t time.Time, loc *time.Location) bool {
	if c.empty() {
		return false
	}
	y, m, d := t.In(loc).Date()
	return c.contains(y, int(m), d)
}
