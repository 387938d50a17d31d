package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/schedule"
)

// Bounds of `tandem schedule next -n`.
const (
	ScheduleNextCountDefault = 10
	ScheduleNextCountMax     = 10000
)

func newScheduleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Check schedule expressions locally, without a server"}
	cmd.AddCommand(newScheduleNextCmd(g))
	return cmd
}

// scheduleNextFlags are the job file's timing fields, given on the command line.
type scheduleNextFlags struct {
	tz, from, start, end string
	blackout             []string
	n                    int
}

func newScheduleNextCmd(g *globals) *cobra.Command {
	var f scheduleNextFlags
	cmd := &cobra.Command{
		Use:   "next EXPR",
		Short: "Print the next occurrences of a schedule expression, as the scheduler computes them",
		Long: "Print the next occurrences of a schedule expression (anything a job file's schedule\n" +
			"accepts: cron, a macro, \"@every D\", \"at TIME\") strictly after --from, in UTC and in\n" +
			"the time zone. Occurrences on blackout dates are listed as skipped. Nothing is sent to\n" +
			"a server: the expression is read by the same code as a job file, with its errors.",
		Example: "  tandem schedule next '30 2 * * *' --tz America/New_York --from 2026-03-07T00:00:00Z -n 3\n" +
			"  tandem schedule next '0 7 * * MON-FRI' --tz Europe/Berlin --blackout 2026-12-24,*-12-25 --json",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.preview(args[0], g.now())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(p.jsonShape())
			}
			return p.print(g.out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tz, "tz", job.TimezoneDefault, "IANA time zone the expression is read in, as the job file's timezone")
	fl.StringVar(&f.from, "from", "", "list occurrences strictly after this RFC 3339 time (default: now)")
	fl.IntVarP(&f.n, "count", "n", ScheduleNextCountDefault, fmt.Sprintf("how many occurrences to list, at most %d", ScheduleNextCountMax))
	fl.StringSliceVar(&f.blackout, "blackout", nil, "blackout dates YYYY-MM-DD or *-MM-DD, repeated or comma separated, as the job file's blackout")
	fl.StringVar(&f.start, "start", "", "RFC 3339: no occurrence before it, as the job file's start")
	fl.StringVar(&f.end, "end", "", "RFC 3339: no occurrence after it, as the job file's end")
	return cmd
}

// preview reads the flags through a job definition, so that an expression is accepted,
// refused and timed exactly as in a job file.
func (f *scheduleNextFlags) preview(expr string, now time.Time) (preview, error) {
	if f.n < 1 || f.n > ScheduleNextCountMax {
		return preview{}, fmt.Errorf("-n must be between 1 and %d, got %d", ScheduleNextCountMax, f.n)
	}
	from := now
	if f.from != "" {
		var err error
		if from, err = time.Parse(time.RFC3339, f.from); err != nil {
			return preview{}, fmt.Errorf("--from %q is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z): %w", f.from, err)
		}
	}
	spec := job.Spec{Schedule: []string{expr}, Timezone: f.tz, Start: f.start, End: f.end, Blackout: f.blackout}
	scheds, err := spec.Schedules()
	if err != nil {
		return preview{}, err
	}
	s := scheds[0]
	occ, ended := upcoming(s, from, f.n)
	return preview{expr: expr, sched: s, from: from, occ: occ, ended: ended}, nil
}

// occurrence is one upcoming occurrence of a schedule; a skipped one falls on a blackout
// date and will be recorded as skipped instead of run.
type occurrence struct {
	at      time.Time
	skipped bool
}

// upcoming returns the first n occurrences of s strictly after from, blacked-out ones
// included and marked; ended reports that s has no more (so fewer may be returned).
func upcoming(s schedule.Schedule, from time.Time, n int) (occ []occurrence, ended bool) {
	for after := from; len(occ) < n; {
		t, ok := s.Next(after)
		if !ok {
			return occ, true
		}
		occ = append(occ, occurrence{at: t, skipped: s.BlackedOut(t)})
		after = t
	}
	return occ, false
}

// preview is what `schedule next` shows.
type preview struct {
	expr  string
	sched schedule.Schedule
	from  time.Time
	occ   []occurrence
	ended bool
}

// scheduleNextJSON is the --json shape: fields may be added, never renamed.
type scheduleNextJSON struct {
	Expr    string   `json:"expr"`
	Kind    string   `json:"kind"`
	TZ      string   `json:"tz"`
	From    string   `json:"from"`
	Next    []string `json:"next"`    // occurrences that will fire, RFC 3339 UTC
	Skipped []string `json:"skipped"` // occurrences on blackout dates, RFC 3339 UTC
}

func (p preview) jsonShape() scheduleNextJSON {
	v := scheduleNextJSON{Expr: p.expr, Kind: string(p.sched.Expr.Kind()), TZ: p.sched.Location.String(),
		From: utc(p.from), Next: []string{}, Skipped: []string{}}
	for _, o := range p.occ {
		if o.skipped {
			v.Skipped = append(v.Skipped, utc(o.at))
		} else {
			v.Next = append(v.Next, utc(o.at))
		}
	}
	return v
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (p preview) print(w io.Writer) error {
	fmt.Fprintf(w, "%s: %s\n", p.expr, kindNote(p.sched.Expr.Kind()))
	fmt.Fprintf(w, "in %s, after %s\n\n", p.sched.Location, utc(p.from))
	if err := printOccurrences(w, "", p.sched.Location, p.occ); err != nil {
		return err
	}
	if p.ended {
		fmt.Fprintln(w, "no further occurrence")
	}
	return nil
}

// kindNote says how an expression of kind k behaves across DST, for an operator checking it.
func kindNote(k schedule.Kind) string {
	switch k {
	case schedule.KindFixedTime:
		return "fixed-time cron: a wall time skipped by DST fires when the gap ends; a repeated one fires once, on its first pass"
	case schedule.KindInterval:
		return "interval cron: fires at real instants; wall times skipped by DST do not fire, repeated ones fire on both passes"
	case schedule.KindEvery:
		return "@every: fixed instants in absolute time, unaffected by DST"
	case schedule.KindAt:
		return "at: once"
	}
	return string(k)
}

// printOccurrences writes one row per occurrence, in UTC and in loc, each row starting
// with indent; a skipped one says so in a third column.
func printOccurrences(w io.Writer, indent string, loc *time.Location, occ []occurrence) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%sUTC\t%s\n", indent, loc)
	for _, o := range occ {
		local := o.at.In(loc)
		fmt.Fprintf(tw, "%s%s\t%s", indent, utc(o.at), local.Format("2006-01-02 15:04:05.999999999 MST (-07:00)"))
		if o.skipped { // only then a third cell: other rows end without padding
			fmt.Fprintf(tw, "\tskipped: blackout date %s", local.Format(time.DateOnly))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
