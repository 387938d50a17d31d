package job

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/schedule"
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

// Limits on a definition.
const (
	RetriesMax   = 100
	CopiesMax    = 10
	NoopSleepMax = 24 * time.Hour
)

// Default fills the optional fields that were left empty.
func (s *Spec) Default() {
	if s.Timezone == "" {
		s.Timezone = TimezoneDefault
	}
	if s.Misfire == "" {
		s.Misfire = MisfireDefault
	}
	if s.MisfireGrace == 0 {
		s.MisfireGrace = Duration(MisfireGraceDefault)
	}
	if s.MisfireWindow == 0 {
		s.MisfireWindow = Duration(MisfireWindowDefault)
	}
	if s.Overlap == "" {
		s.Overlap = OverlapDefault
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(TimeoutDefault)
	}
	if s.RetryBackoff == 0 {
		s.RetryBackoff = Duration(RetryBackoffDefault)
	}
	if s.RetryBackoffMax == 0 {
		s.RetryBackoffMax = Duration(RetryBackoffMaxDefault)
	}
	if s.HTTP != nil && s.HTTP.Method == "" {
		s.HTTP.Method = HTTPMethodDefault
	}
	for i := range s.Deliver {
		s.Deliver[i].Default()
	}
}

// BalanceAlgorithms are the values `balance` takes: the dispatcher's algorithms (see
// internal/dispatch, which checks it names the same).
var BalanceAlgorithms = []string{"round-robin", "min-load", "weighted-min-load", "random"}

// Validate checks every field and returns the first problem as a *ValidationError.
func (s *Spec) Validate() error {
	err := s.validate()
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Job = s.Name
	}
	return err
}

func (s *Spec) validate() error {
	if s.Name == "" {
		return invalid("name", "missing: every job needs a name")
	}
	if !namePattern.MatchString(s.Name) {
		return invalid("name", "%q is not allowed: use 1 to 100 letters, digits, - and _", s.Name)
	}
	if _, err := s.Schedules(); err != nil {
		return err
	}
	if !slices.Contains([]string{MisfireSkip, MisfireRunOnce, MisfireRunAll}, s.Misfire) {
		return invalid("misfire", "%q is not a misfire policy (allowed: skip, run-once, run-all)", s.Misfire)
	}
	if s.MisfireGrace < 0 {
		return invalid("misfire_grace", "must not be negative, got %s", s.MisfireGrace)
	}
	if s.MisfireWindow < 0 {
		return invalid("misfire_window", "must not be negative, got %s", s.MisfireWindow)
	}
	if !slices.Contains([]string{OverlapAllow, OverlapForbid, OverlapQueue, OverlapReplace}, s.Overlap) {
		return invalid("overlap", "%q is not an overlap policy (allowed: allow, forbid, queue, replace)", s.Overlap)
	}
	if s.Timeout < 0 {
		return invalid("timeout", "must not be negative, got %s", s.Timeout)
	}
	if s.LateAfter < 0 {
		return invalid("late_after", "must not be negative, got %s", s.LateAfter)
	}
	if s.LongAfter < 0 {
		return invalid("long_after", "must not be negative, got %s", s.LongAfter)
	}
	if s.Retries < 0 || s.Retries > RetriesMax {
		return invalid("retries", "must be between 0 and %d, got %d", RetriesMax, s.Retries)
	}
	if s.Copies < 0 || s.Copies > CopiesMax {
		return invalid("copies", "must be between 1 and %d, got %d", CopiesMax, s.Copies)
	}
	if s.RetryBackoff < 0 {
		return invalid("retry_backoff", "must not be negative, got %s", s.RetryBackoff)
	}
	if s.RetryBackoffMax < s.RetryBackoff {
		return invalid("retry_backoff_max", "must be at least retry_backoff (%s), got %s", s.RetryBackoff, s.RetryBackoffMax)
	}
	for i, tag := range s.Tags {
		if strings.TrimSpace(tag) == "" || strings.ContainsAny(tag, ", ") {
			return invalid(fmt.Sprintf("tags[%d]", i), "%q is not a tag: use a non-empty word without spaces or commas", tag)
		}
	}
	if s.Balance != "" && !slices.Contains(BalanceAlgorithms, s.Balance) {
		return invalid("balance", "%q is not a load-balancing algorithm (allowed: %s)", s.Balance, strings.Join(BalanceAlgorithms, ", "))
	}
	if err := s.validateExecutor(); err != nil {
		return err
	}
	for i := range s.Deliver {
		if err := s.Deliver[i].validate(i); err != nil {
			return err
		}
	}
	return nil
}

// CheckAtFuture refuses an `at` schedule whose time is not after now: it would never
// fire. stored are the job's expressions in the repository, if it is there already:
// one of them given again unchanged is fine, so a job file applied twice still applies.
func (s *Spec) CheckAtFuture(now time.Time, stored []string) error {
	for i, text := range s.Schedule {
		f := strings.Fields(text)
		if len(f) != 2 || !strings.EqualFold(f[0], "at") {
			continue
		}
		at, err := time.Parse(time.RFC3339, f[1])
		if err != nil || at.After(now) {
			continue // Validate tells what is wrong with it
		}
		if slices.ContainsFunc(stored, func(e string) bool { return strings.Join(strings.Fields(e), " ") == strings.Join(f, " ") }) {
			continue
		}
		return &ValidationError{Job: s.Name, Field: fmt.Sprintf("schedule[%d]", i),
			Problem: fmt.Sprintf("%q is in the past (it is now %s): it would never fire", strings.Join(f, " "), now.UTC().Format(time.RFC3339))}
	}
	return nil
}

func (s *Spec) validateExecutor() error {
	var given []string // in the order the reference lists them
	if s.Command != nil {
		given = append(given, "command")
	}
	if s.HTTP != nil {
		given = append(given, "http")
	}
	if s.Noop != nil {
		given = append(given, "noop")
	}
	switch {
	case len(given) == 0:
		return invalid("command", "missing executor: give a [command], an [http] or a [noop] table")
	case len(given) > 1:
		return invalid(given[1], "a job has one executor: give one of [command], [http] or [noop], not both [%s] and [%s]", given[0], given[1])
	case s.Command != nil:
		c := s.Command
		if len(c.Argv) == 0 || c.Argv[0] == "" {
			return invalid("command.argv", "missing: give the program and its arguments, e.g. [\"./report.sh\", \"--csv\"]")
		}
		if c.Shell && len(c.Argv) != 1 {
			return invalid("command.argv", "with shell = true, argv holds exactly one element: the script for /bin/sh -c (got %d)", len(c.Argv))
		}
		for k := range c.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return invalid("command.env", "%q is not a variable name", k)
			}
		}
		for i, k := range c.InheritEnv {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return invalid(fmt.Sprintf("command.inherit_env[%d]", i), "%q is not a variable name", k)
			}
		}
	case s.HTTP != nil:
		h := s.HTTP
		u, err := url.Parse(withoutSecretRefs(h.URL))
		if h.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("http.url", "%q is not an http:// or https:// URL", h.URL)
		}
		if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, h.Method) {
			return invalid("http.method", "%q is not allowed (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)", h.Method)
		}
		for i, st := range h.ExpectStatus {
			if st < 100 || st > 599 {
				return invalid(fmt.Sprintf("http.expect_status[%d]", i), "%d is not an HTTP status (100-599)", st)
			}
		}
	default:
		if d := s.Noop.Sleep; d < 0 || d.D() > NoopSleepMax {
			return invalid("noop.sleep", "must be between 0s and %s, got %s", NoopSleepMax, d)
		}
	}
	return nil
}

// Location returns the job's time zone.
func (s *Spec) Location() (*time.Location, error) {
	tz := s.Timezone
	if tz == "" {
		tz = TimezoneDefault
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || strings.EqualFold(tz, "local") {
		return nil, invalid("timezone", "%q is not a known IANA time zone (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")", tz)
	}
	return loc, nil
}

// Schedules builds the job's schedules, one per expression, in order.
func (s *Spec) Schedules() ([]schedule.Schedule, error) {
	loc, err := s.Location()
	if err != nil {
		return nil, err
	}
	var start, end time.Time
	if s.Start != "" {
		if start, err = time.Parse(time.RFC3339, s.Start); err != nil {
			return nil, invalid("start", "%q is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)", s.Start)
		}
	}
	if s.End != "" {
		if end, err = time.Parse(time.RFC3339, s.End); err != nil {
			return nil, invalid("end", "%q is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z)", s.End)
		}
		if !start.IsZero() && !end.After(start) {
			return nil, invalid("end", "must be after start (%s)", s.Start)
		}
	}
	cal, err := schedule.ParseCalendar(s.Blackout)
	if err != nil {
		return nil, fieldError("blackout", err)
	}
	out := make([]schedule.Schedule, 0, len(s.Schedule))
	for i, text := range s.Schedule {
		expr, err := schedule.ParseExpr(text)
		if err != nil {
			return nil, fieldError(fmt.Sprintf("schedule[%d]", i), err)
		}
		out = append(out, schedule.Schedule{Expr: expr, Location: loc, Start: start, End: end, Blackout: cal})
	}
	return out, nil
}

// ScheduleKey identifies a schedule's timing: while it is unchanged, re-applying the job
// keeps the schedule's firing state.
func (s *Spec) ScheduleKey(i int) string {
	return strings.Join([]string{strings.TrimSpace(s.Schedule[i]), s.Timezone, s.Start, s.End}, "|")
}

// Policy is the job's misfire policy in the schedule package's terms.
func (s *Spec) Policy() schedule.Policy {
	p := schedule.Policy{Grace: s.MisfireGrace.D(), Window: s.MisfireWindow.D()}
	switch s.Misfire {
	case MisfireSkip:
		p.Misfire = schedule.MisfireSkip
	case MisfireRunAll:
		p.Misfire = schedule.MisfireRunAll
	default:
		p.Misfire = schedule.MisfireRunOnce
	}
	return p
}

func fieldError(field string, err error) *ValidationError {
	var pe *schedule.ParseError
	if errors.As(err, &pe) {
		return invalid(field, "%s", pe.Error())
	}
	return invalid(field, "%v", err)
}
