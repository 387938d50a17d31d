package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Secrets jobs refer to as {{secret \"NAME\"}} (admin); values are never shown"}
	var file string
	set := &cobra.Command{
		Use:   "set NAME [--file F]",
		Short: "Set a secret's value, read from stdin (or --file), never from an argument; a trailing newline is dropped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			var err error
			if file != "" {
				value, err = os.ReadFile(file)
			} else {
				value, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			}
			if err != nil {
				return fmt.Errorf("read the secret's value: %w", err)
			}
			value = bytes.TrimRight(value, "\r\n")
			if err := g.client().SecretSet(cmd.Context(), args[0], value); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "secret %s set\n", args[0])
			return nil
		},
	}
	set.Flags().StringVar(&file, "file", "", "read the value from this file")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the secrets (names and versions only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := g.client().SecretList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(ss)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tUPDATED")
			for _, s := range ss {
				fmt.Fprintf(w, "%s\t%d\t%s\n", s.Name, s.Version, s.UpdatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a secret (jobs that refer to it fail until it is set again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().SecretDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "secret %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}
