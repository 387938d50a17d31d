package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
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
			fmt.Fprintf(g.out, "Primary: %s   Lease epoch: %d\n\n", primary, st.Epoch)
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tADDRESS\tMODE\tRUNNING\tQUEUED\tPRIORITY\tEPOCH\tSERVICES")
			for _, n := range st.Nodes {
				var svc []string
				for _, s := range n.Services {
					svc = append(svc, s.Name+": "+s.Status)
				}
				epoch := "-" // the lease epoch, on the row of the node that holds the lease
				if n.ID == st.Primary {
					epoch = fmt.Sprint(st.Epoch)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\t%s\n", n.ID, n.Address, n.Mode, n.Running, n.Capacity, n.Queued, n.Priority, epoch, strings.Join(svc, ", "))
			}
			return w.Flush()
		},
	}
}
