package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
)

func newOutputsCmd(g *globals) *cobra.Command {
	var run int64
	var under bool
	var limit int
	cmd := &cobra.Command{
		Use:   "outputs",
		Short: "List output files with the nodes that hold a copy, and whether each is durable",
		Long: "An output is durable when it has its copies (the job's copies, or the server's output_copies;\n" +
			"at most the live nodes) checked by SHA-256 on live nodes. Newest runs first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if run < 0 || limit < 0 {
				return errors.New("--run and --limit must not be negative")
			}
			outs, err := g.client().OutputFind(cmd.Context(), run, under, limit)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(outs)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RUN\tATTEMPT\tNAME\tSIZE\tCOPIES\tDURABLE\tHOLDERS")
			for _, o := range outs {
				durable := "no"
				if o.Durable {
					durable = "yes"
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%d\t%s\t%s\n", o.Run, o.Attempt, o.Name, o.Size, o.Copies, durable, holdersText(o.Holders))
			}
			return w.Flush()
		},
	}
	cmd.Flags().Int64Var(&run, "run", 0, "only this run's outputs")
	cmd.Flags().BoolVar(&under, "underreplicated", false, "only outputs that are not durable")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (0: the API's default, 1000)")
	return cmd
}

// holdersText is "a, b (copying), c (lost)": each holder with its state unless verified.
func holdersText(hs []wire.Holder) string {
	if len(hs) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		if h.State == "verified" || h.State == "" {
			parts = append(parts, h.Node)
		} else {
			parts = append(parts, h.Node+" ("+h.State+")")
		}
	}
	return strings.Join(parts, ", ")
}

// copiesText says how an output's copies stand, for `runs show`.
func copiesText(o wire.Output) string {
	state := "not durable"
	if o.Durable {
		state = "durable"
	}
	return fmt.Sprintf("%s, %d copies wanted; held by %s", state, o.Copies, holdersText(o.Holders))
}
