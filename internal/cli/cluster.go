package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/config"
)

func newSwitchCmd(g *globals) *cobra.Command {
	var to string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "switch [--to NODE]",
		Short: "Hand the primary role over to another node (planned switchover); default: the best standby",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.client()
			res, err := c.Switch(cmd.Context(), to)
			if err != nil {
				return err
			}
			// Wait until the successor shows as primary, so scripts can rely on it.
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			for {
				st, err := c.Status(ctx)
				if err == nil && st.Primary == res.To {
					if g.json {
						return g.printJSON(map[string]any{"from": res.From, "to": res.To, "epoch": st.Epoch})
					}
					fmt.Fprintf(g.out, "switched over: %s is primary now (epoch %d), %s stands by\n", res.To, st.Epoch, res.From)
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("%s resigned in favour of %s, which is not primary after %s", res.From, res.To, wait)
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the node to hand the role to (a live standby)")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the new primary")
	return cmd
}

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Operator actions on a node: suspend, resume, standby, stop, restart"}
	for _, a := range []struct{ name, short string }{
		{"suspend", "Suspend the primary: it keeps the role but fires and dispatches nothing"},
		{"resume", "Resume a suspended primary, or let a held standby take over again"},
		{"standby", "Hold a standby: it will not take over (seed: Stand By)"},
		{"stop", "Stop a node gracefully (a primary hands its role over first)"},
		{"restart", "Restart a node gracefully (a primary hands its role over first)"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   a.name + " NODE",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				res, err := g.client().NodeAction(cmd.Context(), args[0], a.name)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(res)
				}
				fmt.Fprintf(g.out, "node %s: %s done; mode %s\n", res.Node, res.Action, res.Mode)
				return nil
			},
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "weight NODE WEIGHT",
		Short: "Set a node's load-balancing weight (above 0; weighted-min-load gives it runs in proportion); stored, it outlives the node's process",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := strconv.ParseFloat(args[1], 64)
			if err != nil || !(w > 0 && w <= config.WeightMax) {
				return fmt.Errorf("weight: %q is not a number above 0 and at most %g", args[1], float64(config.WeightMax))
			}
			res, err := g.client().NodeWeight(cmd.Context(), args[0], w)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.out, "node %s: weight %g\n", res.Node, res.Weight)
			return nil
		},
	})
	return cmd
}

// newRoleCmds are `tandem suspend` and `tandem resume`: the operator actions on the
// cluster's primary role, sent to whichever node holds it now.
func newRoleCmds(g *globals) []*cobra.Command {
	var out []*cobra.Command
	for _, a := range []struct{ name, short string }{
		{"suspend", "Suspend the primary role: whoever holds it fires and dispatches nothing until resumed (also after a failover)"},
		{"resume", "Resume the suspended primary role"},
	} {
		out = append(out, &cobra.Command{
			Use:   a.name,
			Short: a.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c := g.client()
				st, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				if st.Primary == "" {
					return fmt.Errorf("no primary holds the role now; try again in a moment")
				}
				res, err := c.NodeAction(cmd.Context(), st.Primary, a.name)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(res)
				}
				fmt.Fprintf(g.out, "primary role (node %s): %s done; mode %s\n", res.Node, res.Action, res.Mode)
				return nil
			},
		})
	}
	return out
}
