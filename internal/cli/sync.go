package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
)

func newSyncCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "The disaster-recovery site sync: status, full, pause, resume, promote",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the sync: the sender's cursor, lag and last error (on the source) and the target role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.client().SyncStatus(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			printSyncStatus(g.out, st)
			return nil
		},
	}, &cobra.Command{
		Use:   "full",
		Short: "Replace the target's whole configuration with this cluster's, in one transaction on the target (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := g.client().SyncFull(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.out, "full sync: %d items at sequence %d in %s; target cursor %d\n", res.Items, res.Seq, res.Took.Round(time.Millisecond), res.Target.Cursor)
			return nil
		},
	})
	for _, pause := range []bool{true, false} {
		use, short := "resume", "Resume automatic sync (and clear the count of failures)"
		if pause {
			use, short = "pause", "Pause automatic sync until resumed"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := g.client().SyncPause(cmd.Context(), pause)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(st)
				}
				printSyncStatus(g.out, st)
				return nil
			},
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "promote",
		Short: "On the DR site: end its sync target role and resume the jobs the sync held paused (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := g.client().SyncPromote(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.out, "promoted: no longer the sync target of %s; %d jobs resumed\n", res.Target.SourceName, len(res.Resumed))
			return nil
		},
	})
	return cmd
}

func printSyncStatus(w io.Writer, st wire.SyncStatus) {
	if s := st.Sender; s != nil {
		state := "streaming"
		switch {
		case s.Paused:
			state = "paused"
		case s.Mode == "on-demand":
			state = "on-demand (full sync only)"
		case s.Failures > 0:
			state = fmt.Sprintf("failing (%d in a row)", s.Failures)
		}
		fmt.Fprintf(w, "source:       %s → %s\n", state, strings.Join(s.Targets, ", "))
		fmt.Fprintf(w, "cursor:       %d (latest change %d, made %s)\n", s.Cursor, s.Latest, syncWhen(s.LastChange))
		fmt.Fprintf(w, "lag:          %d changes, %.3fs\n", s.LagChanges, s.LagSeconds)
		fmt.Fprintf(w, "last success: %s (%s)\n", syncWhen(s.LastOKAt), s.Target)
		if s.LastError != "" {
			fmt.Fprintf(w, "last error:   %s: %s\n", syncWhen(s.LastErrorAt), s.LastError)
		}
	}
	t := st.Target
	switch {
	case t.Active:
		fmt.Fprintf(w, "target of:    %s (fingerprint %s), cursor %d, applied %s; local configuration changes are refused\n", t.SourceName, t.Source, t.Cursor, syncWhen(t.AppliedAt))
	case !t.PromotedAt.IsZero():
		fmt.Fprintf(w, "target:       promoted at %s (was the target of %s)\n", syncWhen(t.PromotedAt), t.SourceName)
	case st.Sender == nil:
		fmt.Fprintln(w, "not a sync source ([sitesync] target unset) nor a target")
	}
}

func syncWhen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.RFC3339)
}
