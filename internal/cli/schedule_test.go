package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// testNow is the clock of these tests: a Saturday, 2026-03-07 12:00 in New York.
var testNow = time.Date(2026, 3, 7, 17, 0, 0, 0, time.UTC)

// run executes the command line args as tandem would, with a fixed clock, and returns
// what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&globals{out: &out, errOut: &out, now: func() time.Time { return testNow }})
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestScheduleNextText(t *testing.T) {
	t.Parallel()
	got, err := run(t, "schedule", "next", "30 2 * * *", "--tz", "America/New_York",
		"--from", "2026-03-07T00:00:00Z", "-n", "3", "--blackout", "2026-03-09")
	if err != nil {
		t.Fatal(err)
	}
	want := `30 2 * * *: fixed-time cron: a wall time skipped by DST fires when the gap ends; a repeated one fires once, on its first pass
in America/New_York, after 2026-03-07T00:00:00Z

UTC                   America/New_York
2026-03-07T07:30:00Z  2026-03-07 02:30:00 EST (-05:00)
2026-03-08T07:00:00Z  2026-03-08 03:00:00 EDT (-04:00)
2026-03-09T06:30:00Z  2026-03-09 02:30:00 EDT (-04:00)  skipped: blackout date 2026-03-09
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// The preview follows the scheduler's rule: an interval expression fires on both passes
// of New York's repeated hour, 120 times between 05:00Z and 07:00Z.
func TestScheduleNextIntervalAcrossFallBack(t *testing.T) {
	t.Parallel()
	v := scheduleNextJSONOf(t, "* * * * *", "--tz", "America/New_York", "--from", "2026-11-01T04:59:00Z", "-n", "121")
	next := strings.Join(v.Next, " ")
	if len(v.Next) != 121 || v.Next[0] != "2026-11-01T05:00:00Z" || v.Next[119] != "2026-11-01T06:59:00Z" ||
		v.Next[120] != "2026-11-01T07:00:00Z" || strings.Count(next, "T06:") != 60 {
		t.Errorf("next: %v", v.Next)
	}
}

// scheduleNextJSONOf runs schedule next --json and decodes it with the test's own type.
func scheduleNextJSONOf(t *testing.T, expr string, flags ...string) struct{ Next, Skipped []string } {
	t.Helper()
	out, err := run(t, append([]string{"schedule", "next", expr, "--json"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Next, Skipped []string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return v
}

// The --json shape, read as a script would: plain maps, RFC 3339 UTC strings.
func TestScheduleNextJSON(t *testing.T) {
	t.Parallel()
	out, err := run(t, "schedule", "next", "0 7 * * MON-FRI", "--json", "--tz", "Europe/Berlin",
		"--from", "2026-12-23T00:00:00+01:00", "--blackout", "2026-12-24,*-12-25", "--blackout", "2026-12-29", "-n", "5")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, " ") != "expr from kind next skipped tz" {
		t.Errorf("keys %v", keys)
	}
	want := map[string]any{
		"expr": "0 7 * * MON-FRI", "kind": "fixed-time", "tz": "Europe/Berlin", "from": "2026-12-22T23:00:00Z",
		"next":    []any{"2026-12-23T06:00:00Z", "2026-12-28T06:00:00Z"},
		"skipped": []any{"2026-12-24T06:00:00Z", "2026-12-25T06:00:00Z", "2026-12-29T06:00:00Z"},
	}
	for k, w := range want {
		if g, _ := json.Marshal(v[k]); string(g) != mustJSON(t, w) {
			t.Errorf("%s: got %s, want %s", k, g, mustJSON(t, w))
		}
	}
	// Nothing skipped, nothing left: both lists are still lists.
	out, err = run(t, "schedule", "next", "at 2026-12-01T07:00:00Z", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"next": [
    "2026-12-01T07:00:00Z"
  ]`) || !strings.Contains(out, `"skipped": []`) {
		t.Errorf("at: %s", out)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Defaults: ten occurrences after now, in UTC.
func TestScheduleNextDefaults(t *testing.T) {
	t.Parallel()
	v := scheduleNextJSONOf(t, "@hourly")
	if len(v.Next) != ScheduleNextCountDefault || v.Next[0] != "2026-03-07T18:00:00Z" || v.Next[9] != "2026-03-08T03:00:00Z" {
		t.Errorf("next: %v", v.Next)
	}
	v = scheduleNextJSONOf(t, "0 * * * *", "--start", "2026-03-07T20:30:00Z", "--end", "2026-03-07T23:00:00Z")
	if strings.Join(v.Next, " ") != "2026-03-07T21:00:00Z 2026-03-07T22:00:00Z 2026-03-07T23:00:00Z" {
		t.Errorf("start/end: %v", v.Next)
	}
}

// Errors are the job file's: the field, then the expression's part at fault.
func TestScheduleNextErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args  []string
		field string // of a *job.ValidationError; "" for any other error
		want  string
	}{
		{[]string{"0 25 * * *"}, "schedule[0]", `schedule[0]: cron field 2 (hour) "25": value 25 out of range 0-23`},
		{[]string{"@every 1ms"}, "schedule[0]", `schedule[0]: @every "1ms": interval 1ms is below the minimum of 10ms`},
		{[]string{"@daily", "--tz", "Mars/Olympus"}, "timezone", `timezone: "Mars/Olympus" is not a known IANA time zone`},
		{[]string{"@daily", "--blackout", "2026-02-30"}, "blackout", `blackout: blackout date "2026-02-30": not a date`},
		{[]string{"@daily", "--start", "tomorrow"}, "start", `start: "tomorrow" is not an RFC 3339 time`},
		{[]string{"@daily", "-n", "10001"}, "", "-n must be between 1 and 10000, got 10001"},
		{[]string{"@daily", "-n", "0"}, "", "-n must be between 1 and 10000, got 0"},
		{[]string{"@daily", "--from", "2026-13-01"}, "", `--from "2026-13-01" is not an RFC 3339 time`},
	} {
		_, err := run(t, append([]string{"schedule", "next"}, c.args...)...)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %s", c.args, err, c.want)
			continue
		}
		var ve *job.ValidationError
		if got := errors.As(err, &ve); got != (c.field != "") || got && ve.Field != c.field {
			t.Errorf("%v: error %#v, want field %q", c.args, err, c.field)
		}
	}
}

// -n reaches its maximum and no further.
func TestScheduleNextCountLimit(t *testing.T) {
	t.Parallel()
	v := scheduleNextJSONOf(t, "* * * * * *", "-n", "10000")
	if len(v.Next) != ScheduleNextCountMax || v.Next[ScheduleNextCountMax-1] != "2026-03-07T19:46:40Z" {
		t.Errorf("%d occurrences, last %s", len(v.Next), v.Next[len(v.Next)-1])
	}
}
