package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/client"
)

func newDeliveriesCmd(g *globals) *cobra.Command {
	var p client.DeliveryListParams
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List delivery records (a run's outputs to one [[deliver]] entry), newest first; show or retry one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.Limit < 0 {
				return fmt.Errorf("%s", wire.LimitProblem("limit", 0, wire.RunListLimitMax, strconv.Itoa(p.Limit)))
			}
			ds, err := g.client().DeliveryList(cmd.Context(), p)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(ds)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tRUN\tJOB\tCHANNEL\tTARGET\tSTATE\tATTEMPTS\tNEXT\tLAST")
			for _, d := range ds {
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Run, d.Job, d.Channel, short(d.Target, 40), d.State,
					d.Attempts, when(d.NextAt), short(last(d), 60))
			}
			return w.Flush()
		},
	}
	cmd.Flags().Int64Var(&p.Run, "run", 0, "only the records of this run")
	cmd.Flags().StringVar(&p.Job, "job", "", "only the records of this job's runs")
	cmd.Flags().StringSliceVar(&p.States, "state", nil, "only records in these states (pending, sending, delivered, failed, disabled)")
	cmd.Flags().IntVar(&p.Limit, "limit", 50, "at most this many records (0: the API's default, 100; at most 10000)")
	cmd.AddCommand(newDeliveriesShowCmd(g), newDeliveriesRetryCmd(g))
	return cmd
}

// last is what the last attempt said: its error, else the channel's answer.
func last(d wire.Delivery) string {
	if d.LastError != "" {
		return d.LastError
	}
	return dash(d.LastResponse)
}

func parseDeliveryID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("delivery id must be a positive whole number, got %q", s)
	}
	return id, nil
}

func newDeliveriesShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a delivery record with each attempt and the channel's responses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseDeliveryID(args[0])
			if err != nil {
				return err
			}
			d, err := g.client().DeliveryGet(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(d)
			}
			printDelivery(g, d)
			return nil
		},
	}
}

func printDelivery(g *globals, d wire.Delivery) {
	w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }
	row("Delivery", fmt.Sprintf("%d (key %s)", d.ID, d.Key))
	row("Run", fmt.Sprintf("%d of %s, entry deliver[%d]", d.Run, d.Job, d.Entry))
	row("Channel", d.Channel+" "+d.Target)
	row("State", d.State)
	row("Attempts", d.Attempts)
	if d.NextAt != nil {
		row("Next attempt", when(d.NextAt))
	}
	if d.DeliveredAt != nil {
		row("Delivered", when(d.DeliveredAt))
	}
	for _, a := range d.History {
		what := a.Response
		if a.Error != "" {
			what = a.Error
		}
		row(fmt.Sprintf("Attempt %d", a.N), fmt.Sprintf("%s on %s: %s", a.Outcome, a.Node, what))
	}
	_ = w.Flush()
}

func newDeliveriesRetryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Send a failed or disabled delivery again, now, with a fresh budget of attempts (operator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseDeliveryID(args[0])
			if err != nil {
				return err
			}
			d, err := g.client().DeliveryRetry(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(d)
			}
			fmt.Fprintf(g.out, "delivery %d of run %d: %s again\n", d.ID, d.Run, d.State)
			return nil
		},
	}
}
