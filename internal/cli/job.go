package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/job"
)

func newJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Manage jobs: apply, list, show, delete, pause, resume"}
	cmd.AddCommand(newJobApplyCmd(g), newJobListCmd(g), newJobShowCmd(g), newJobDeleteCmd(g),
		newJobPauseCmd(g, true), newJobPauseCmd(g, false))
	return cmd
}

func newJobApplyCmd(g *globals) *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the jobs of a job file (TOML or JSON) by name, all or none",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read job file: %w", err)
			}
			if format == "" {
				format = job.DetectFormat(file, data)
			}
			res, err := g.client().JobApply(cmd.Context(), data, format)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			for _, r := range res {
				verb := "updated"
				if r.Created {
					verb = "created"
				}
				fmt.Fprintf(g.out, "job %s %s (next fire: %s)\n", r.Name, verb, when(r.Job.NextFireAt))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "job file, or - for standard input")
	cmd.Flags().StringVar(&format, "format", "", "toml or json (default: from the file name or content)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func newJobListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			jobs, err := g.client().JobList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(jobs)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSCHEDULE\tTIMEZONE\tPAUSED\tNEXT FIRE")
			for _, j := range jobs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", j.Name, strings.Join(j.Schedule, "; "), j.Timezone, j.Paused, when(j.NextFireAt))
			}
			return w.Flush()
		},
	}
}

func newJobShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a job's definition and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := g.client().JobGet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(j)
			}
			return printJob(g.out, j, g.now())
		},
	}
}

// JobShowUpcoming is how many occurrences `job show` lists per schedule.
const JobShowUpcoming = 5

// printJob writes a job's definition and state, then each schedule's next occurrences
// after now, computed here from the definition as `schedule next` would.
func printJob(w io.Writer, j wire.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("Name", j.Name)
	row("Schedule", strings.Join(j.Schedule, "; "))
	row("Time zone", j.Timezone)
	if len(j.Blackout) > 0 {
		row("Blackout", strings.Join(j.Blackout, ", "))
	}
	row("Paused", j.Paused)
	row("Next fire", when(j.NextFireAt))
	row("Misfire", fmt.Sprintf("%s (grace %s, window %s)", j.Misfire, j.MisfireGrace, j.MisfireWindow))
	row("Overlap", j.Overlap)
	row("Timeout", j.Timeout)
	row("Retries", fmt.Sprintf("%d (backoff %s, at most %s)", j.Retries, j.RetryBackoff, j.RetryBackoffMax))
	if len(j.Tags) > 0 {
		row("Tags", strings.Join(j.Tags, ", "))
	}
	switch {
	case j.Command != nil:
		row("Command", strings.Join(j.Command.Argv, " "))
		if j.Command.Dir != "" {
			row("Directory", j.Command.Dir)
		}
	case j.HTTP != nil:
		row("HTTP", j.HTTP.Method+" "+j.HTTP.URL)
	case j.Noop != nil:
		row("No-op", fmt.Sprintf("sleep %s", j.Noop.Sleep))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printUpcoming(w, j, now)
}

// printUpcoming lists each schedule's next JobShowUpcoming occurrences. It reports
// rather than fails when this client cannot read a definition the server accepted (an
// older client, a zone missing here): the rest of the show is still worth printing.
func printUpcoming(w io.Writer, j wire.Job, now time.Time) error {
	if len(j.Schedule) == 0 {
		return nil
	}
	scheds, err := j.Spec.Schedules()
	if err != nil {
		fmt.Fprintf(w, "\nNext occurrences: not computed here: %v\n", err)
		return nil
	}
	fmt.Fprint(w, "\nNext occurrences (computed here, as tandem schedule next)")
	if j.Paused {
		fmt.Fprint(w, "; paused: nothing fires until resumed")
	}
	fmt.Fprintln(w, ":")
	for i, s := range scheds {
		occ, ended := upcoming(s, now, JobShowUpcoming)
		fmt.Fprintf(w, "  schedule[%d] %s (%s)\n", i, j.Schedule[i], s.Expr.Kind())
		if err := printOccurrences(w, "    ", s.Location, occ); err != nil {
			return err
		}
		if ended {
			fmt.Fprintln(w, "    no further occurrence")
		}
	}
	return nil
}

func newJobDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a job (its runs stay as history; queued runs are canceled)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().JobDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.out, "job %s deleted\n", args[0])
			return nil
		},
	}
}

func newJobPauseCmd(g *globals, pause bool) *cobra.Command {
	use, short := "resume NAME", "Resume a job's schedules from now (the paused time is neither fired nor missed)"
	if pause {
		use, short = "pause NAME", "Pause a job's schedules (on-demand runs still work)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := g.client().JobPause(cmd.Context(), args[0], pause)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(j)
			}
			state := "resumed"
			if pause {
				state = "paused"
			}
			fmt.Fprintf(g.out, "job %s %s\n", j.Name, state)
			return nil
		},
	}
}
