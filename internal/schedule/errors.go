package schedule

import "fmt"

// ParseError reports an invalid schedule expression or blackout date. Its message names
// the offending part, what was found and what is allowed, so it can be shown to an
// operator as is.
type ParseError struct {
	// Field names the part at fault: for cron "second", "minute", "hour",
	// "day-of-month", "month" or "day-of-week"; "expression" for the expression as a
	// whole (e.g. a wrong field count); "every", "at" or "blackout" otherwise.
	Field string
	// Value is the text of that part as written.
	Value string
	// Problem says what is wrong and what is allowed.
	Problem string
	// Err is the underlying cause, if any (e.g. from time.Parse).
	Err error

	pos int // 1-based position of a cron field in the expression; 0 otherwise
}

func (e *ParseError) Error() string {
	switch {
	case e.pos > 0:
		return fmt.Sprintf("cron field %d (%s) %q: %s", e.pos, e.Field, e.Value, e.Problem)
	case e.Field == "expression":
		return fmt.Sprintf("schedule expression %q: %s", e.Value, e.Problem)
	case e.Field == "every":
		return fmt.Sprintf("@every %q: %s", e.Value, e.Problem)
	case e.Field == "blackout":
		return fmt.Sprintf("blackout date %q: %s", e.Value, e.Problem)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Problem)
}

func (e *ParseError) Unwrap() error { return e.Err }
