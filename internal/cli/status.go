package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/store"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Print the server-status table: every node, its mode, load and services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			primary := st.Primary
			if primary == "" {
				primary = "(none)"
			}
			fmt.Fprintf(g.out, "Primary: %s   Lease epoch: %d\n", primary, st.Epoch)
			if h := st.Suspended; h != nil {
				fmt.Fprintf(g.out, "The primary role is suspended (by %s at %s): nothing fires until `tandem resume`\n", h.By, h.At.Format(time.RFC3339))
			}
			fmt.Fprintln(g.out)
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tADDRESS\tMODE\tRUNNING\tQUEUED\tPRIORITY\tWEIGHT\tEPOCH\tSERVICES")
			for _, n := range st.Nodes {
				var svc []string
				for _, s := range n.Services {
					svc = append(svc, s.Name+": "+s.Status)
				}
				epoch := "-" // the lease epoch, on the row of the node that holds the lease
				if n.ID == st.Primary {
					epoch = fmt.Sprint(st.Epoch)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%g\t%s\t%s\n", n.ID, n.Address, n.Mode, n.Running, n.Capacity, n.Queued, n.Priority, n.Weight, epoch, strings.Join(svc, ", "))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, n := range st.Nodes {
				if h := n.Hold; h != nil && h.Kind == store.HoldStandby {
					fmt.Fprintf(g.out, "Node %s is held (by %s at %s): it will not take over until `tandem node resume %s`\n", n.ID, h.By, h.At.Format(time.RFC3339), n.ID)
				}
			}
			return nil
		},
	}
}
