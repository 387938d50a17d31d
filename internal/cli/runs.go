package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/client"
)

func newRunCmd(g *globals) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "run JOB",
		Short: "Start an on-demand run of a job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.client()
			r, err := c.JobRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if wait {
				ctx := cmd.Context()
				if timeout > 0 {
					var cancel func()
					ctx, cancel = context.WithTimeout(ctx, timeout)
					defer cancel()
				}
				if r, err = c.RunWait(ctx, r.ID, 200*time.Millisecond); err != nil {
					return fmt.Errorf("wait for run %d: %w", r.ID, err)
				}
			}
			if g.json {
				if err := g.printJSON(r); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.out, "run %d of %s: %s%s\n", r.ID, r.Job, r.State, reasonSuffix(r))
			}
			if wait && r.State != "succeeded" {
				return fmt.Errorf("run %d ended %s", r.ID, r.State)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the run ends; exit non-zero unless it succeeded")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --wait: give up waiting after this long (0: no limit)")
	return cmd
}

func reasonSuffix(r wire.Run) string {
	if r.Reason == "" {
		return ""
	}
	return " (" + r.Reason + ")"
}

func newRunsCmd(g *globals) *cobra.Command {
	var p client.RunListParams
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs, newest first; show, cancel and download outputs of one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := listRuns(cmd.Context(), g.client(), p)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(runs)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tJOB\tSTATE\tATTEMPT\tNODE\tSCHEDULED\tSTARTED\tDURATION\tEXIT\tREASON")
			for _, r := range runs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Job, r.State, r.Attempt, r.MaxAttempts,
					dash(r.Node), when(r.ScheduledAt), when(r.StartedAt), duration(r.DurationMS), exit(r.ExitCode), short(r.Reason, 60))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&p.Job, "job", "", "only runs of this job")
	cmd.Flags().StringSliceVar(&p.States, "state", nil, "only runs in these states (queued, assigned, running, succeeded, failed, canceled, skipped, missed)")
	cmd.Flags().IntVar(&p.Limit, "limit", 50, "at most this many runs (0: the API's default, 100; more than 10000 are fetched in pages)")
	cmd.AddCommand(newRunsShowCmd(g), newRunsCancelCmd(g), newRunsOutputCmd(g))
	return cmd
}

// listRuns lists runs as the API does, with the API's rule for the limit, except that
// a limit above the API's most per request is fetched in pages (before=).
func listRuns(ctx context.Context, c *client.Client, p client.RunListParams) ([]wire.Run, error) {
	if p.Limit < 0 {
		return nil, errors.New(wire.LimitProblem("limit", 0, wire.RunListLimitMax, strconv.Itoa(p.Limit)))
	}
	if p.Limit <= wire.RunListLimitMax {
		return c.RunList(ctx, p)
	}
	var runs []wire.Run
	for want := p.Limit; want > 0; {
		page := p
		page.Limit = min(want, wire.RunListLimitMax)
		got, err := c.RunList(ctx, page)
		if err != nil {
			return nil, err
		}
		runs = append(runs, got...)
		if len(got) < page.Limit {
			break
		}
		want -= len(got)
		p.Before = got[len(got)-1].ID
	}
	return runs, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func duration(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

func exit(c *int) string {
	if c == nil {
		return "-"
	}
	return strconv.Itoa(*c)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("run id must be a positive whole number, got %q", s)
	}
	return id, nil
}

func newRunsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a run: state, attempts, captured stdout/stderr and output files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			r, err := g.client().RunGet(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(r)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }
			row("Run", r.ID)
			row("Job", r.Job)
			row("State", r.State)
			row("Trigger", r.Trigger)
			row("Attempt", fmt.Sprintf("%d of %d", r.Attempt, r.MaxAttempts))
			row("Node", dash(r.Node))
			row("Scheduled", when(r.ScheduledAt))
			if r.Occurrences > 1 {
				row("Occurrences", fmt.Sprintf("%d, until %s", r.Occurrences, when(r.ScheduledUntil)))
			}
			row("Started", when(r.StartedAt))
			row("Finished", when(r.FinishedAt))
			row("Duration", duration(r.DurationMS))
			row("Exit code", exit(r.ExitCode))
			if r.Reason != "" {
				row("Reason", r.Reason)
			}
			for _, o := range r.Outputs {
				row("Output", fmt.Sprintf("%s (%d bytes, made on %s; %s)", o.Name, o.Size, o.Node, copiesText(o)))
			}
			for _, d := range r.Deliveries {
				row("Delivery", fmt.Sprintf("%d %s %s: %s after %d attempts", d.ID, d.Channel, d.Target, d.State, d.Attempts))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, s := range []struct {
				name string
				text *string
			}{{"stdout", r.Stdout}, {"stderr", r.Stderr}} {
				if s.text != nil && *s.text != "" {
					fmt.Fprintf(g.out, "--- %s ---\n%s", s.name, *s.text)
					if !strings.HasSuffix(*s.text, "\n") {
						fmt.Fprintln(g.out)
					}
				}
			}
			return nil
		},
	}
}

func newRunsCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a run: a waiting one at once, a running one is stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			r, err := g.client().RunCancel(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(r)
			}
			if r.State == "running" {
				fmt.Fprintf(g.out, "run %d: cancel requested; its worker is stopping it\n", r.ID)
			} else {
				fmt.Fprintf(g.out, "run %d: %s\n", r.ID, r.State)
			}
			return nil
		},
	}
}

func newRunsOutputCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "output ID [NAME]",
		Short: "Download a run's output files: one to standard output, or all into --dir",
		Long: "With NAME, or when the run has exactly one output file, the file is written to standard output.\n" +
			"With --dir, the named file (or every file) is saved into that directory.\nWith --json, the files are listed.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			c := g.client()
			outs, err := c.OutputList(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(outs)
			}
			var names []string
			for _, o := range outs {
				if len(args) == 1 || o.Name == args[1] {
					names = append(names, o.Name)
				}
			}
			switch {
			case len(outs) == 0:
				return fmt.Errorf("run %d has no output files", id)
			case len(names) == 0:
				return fmt.Errorf("run %d has no output file %q", id, args[1])
			case dir != "":
				for _, name := range names {
					if err := saveOutput(cmd, c, id, name, dir); err != nil {
						return err
					}
					fmt.Fprintf(g.errOut, "saved %s\n", filepath.Join(dir, filepath.FromSlash(name)))
				}
				return nil
			case len(names) > 1:
				return errors.New("run has several output files (" + strings.Join(names, ", ") + "): name one, or use --dir DIR")
			}
			return c.OutputGet(cmd.Context(), id, names[0], g.out)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "save the files into this directory")
	return cmd
}

func saveOutput(cmd *cobra.Command, c *client.Client, id int64, name, dir string) error {
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.OutputGet(cmd.Context(), id, name, f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func newEventsCmd(g *globals) *cobra.Command {
	var typ string
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List recent cluster events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return errors.New(wire.LimitProblem("limit", 0, wire.RunListLimitMax, strconv.Itoa(limit)))
			}
			evs, err := g.client().Events(cmd.Context(), typ, limit)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(evs)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tAT\tTYPE\tNODE\tMESSAGE")
			for _, e := range evs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.At.Local().Format(time.DateTime), e.Type, e.Node, e.Message)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only events of this type (e.g. primary.changed)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events")
	return cmd
}
