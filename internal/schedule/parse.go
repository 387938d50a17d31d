package schedule

import (
	"fmt"
	"strings"
	"time"
)

// Expr is a parsed schedule expression. Only this package implements it; occurrences are
// computed through Schedule.
type Expr interface {
	// String returns the canonical text: it parses back to an equivalent expression.
	// Cron expressions (and macros) are written as five fields, or six when seconds
	// matter, with numbers for names; @every as Go writes the duration; at in UTC.
	String() string
	// Kind says which sort of expression this is; for cron, it picks the DST rule.
	Kind() Kind

	newSeq(s *Schedule) sequence
}

// Kind is the sort of a schedule expression. Cron expressions are of two kinds, which
// differ across DST transitions (see the package doc).
type Kind string

// Kinds of expression.
const (
	// KindFixedTime is cron with a single value in each of its second, minute and hour
	// fields (30 2 * * *, @daily): a time of day. A skipped wall time fires when its gap
	// ends; a repeated one fires once, at its first occurrence.
	KindFixedTime Kind = "fixed-time"
	// KindInterval is every other cron expression (* * * * *, 15,45 * * * *, @hourly):
	// it fires at the real instants whose wall time matches, so a gap fires nothing and
	// a repeated stretch fires on both passes.
	KindInterval Kind = "interval"
	KindEvery    Kind = "every" // @every: fixed instants in absolute time
	KindAt       Kind = "at"    // at: once
)

// sequence enumerates the occurrences of a Schedule (bounds applied, blackouts not).
type sequence interface {
	// next returns the first occurrence strictly after `after`.
	next(after time.Time) (time.Time, bool)
	// count returns how many occurrences lie in [from, to] and the last of them.
	count(from, to time.Time) (int64, time.Time)
	// nth returns the k-th (k >= 1) occurrence at or after from.
	nth(from time.Time, k int64) (time.Time, bool)
}

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

const exprForms = `5 cron fields (minute hour day-of-month month day-of-week), 6 (with seconds first), ` +
	`a macro (@yearly, @monthly, @weekly, @daily, @hourly), "@every <duration>" or "at <RFC 3339 time>"`

// ParseExpr parses a schedule expression: cron (5 or 6 fields), a macro, "@every
// <duration>" or "at <RFC 3339 time>". Errors are *ParseError.
func ParseExpr(s string) (Expr, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, &ParseError{Field: "expression", Value: s, Problem: "empty; expected " + exprForms}
	}
	head := strings.ToLower(fields[0])
	switch {
	case head == "@every":
		return parseEvery(fields[1:])
	case head == "at":
		return parseAt(fields[1:])
	case strings.HasPrefix(head, "@"):
		cron, ok := macros[head]
		if !ok {
			return nil, &ParseError{Field: "expression", Value: strings.TrimSpace(s),
				Problem: fmt.Sprintf("unknown macro %s; expected %s", fields[0], exprForms)}
		}
		if len(fields) > 1 {
			return nil, &ParseError{Field: "expression", Value: strings.TrimSpace(s),
				Problem: fmt.Sprintf("macro %s takes no arguments, found %q", fields[0], strings.Join(fields[1:], " "))}
		}
		return cronOf(strings.Fields(cron))
	case len(fields) == 5 || len(fields) == 6:
		return cronOf(fields)
	}
	return nil, &ParseError{Field: "expression", Value: strings.TrimSpace(s),
		Problem: fmt.Sprintf("cron expressions have 5 fields (minute hour day-of-month month day-of-week) "+
			"or 6 (second first), found %d", len(fields))}
}

func parseEvery(args []string) (Expr, error) {
	v := strings.Join(args, " ")
	if len(args) != 1 {
		return nil, &ParseError{Field: "every", Value: v,
			Problem: "expected one Go duration after @every, e.g. @every 90s or @every 1h30m"}
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return nil, &ParseError{Field: "every", Value: v, Err: err,
			Problem: "not a Go duration; use e.g. 90s, 15m or 1h30m (units ns, us, ms, s, m, h)"}
	}
	if d < MinEvery {
		return nil, &ParseError{Field: "every", Value: v,
			Problem: fmt.Sprintf("interval %s is below the minimum of %s", d, MinEvery)}
	}
	return &everyExpr{d: d}, nil
}

func parseAt(args []string) (Expr, error) {
	v := strings.Join(args, " ")
	if len(args) != 1 {
		return nil, &ParseError{Field: "at", Value: v,
			Problem: "expected one RFC 3339 time after at, e.g. at 2026-12-01T07:00:00Z"}
	}
	t, err := time.Parse(time.RFC3339, args[0])
	if err != nil {
		return nil, &ParseError{Field: "at", Value: v, Err: err,
			Problem: "not an RFC 3339 time with a UTC offset, e.g. 2026-12-01T07:00:00Z or 2026-12-01T08:00:00+01:00"}
	}
	return &atExpr{t: t}, nil
}

// cronOf keeps a nil *cronExpr from becoming a non-nil Expr.
func cronOf(fields []string) (Expr, error) {
	c, err := parseCron(fields)
	if err != nil {
		return nil, err
	}
	return c, nil
}
