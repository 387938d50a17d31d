// Package cli is the tandem command line: the server and the client commands, one file
// per command group. Commands return errors; only main decides the exit code.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/worker"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/job"
)

// Version is set at build time.
var Version = "dev"

// globals are the flags every client command shares.
type globals struct {
	servers []string
	token   string
	ca      string
	timeout time.Duration
	json    bool
	out     io.Writer
	errOut  io.Writer
	now     func() time.Time // the clock of commands that compute from now (schedule next, job show)
}

func (g *globals) client() *client.Client {
	var ca []byte
	if f := cmpOr(g.ca, os.Getenv("TANDEM_CA")); f != "" {
		var err error
		if ca, err = os.ReadFile(f); err != nil {
			fmt.Fprintf(g.errOut, "tandem: --ca %s: %v (using the system's roots)\n", f, err)
		}
	}
	return client.NewConfig(client.Config{Servers: g.servers, Timeout: g.timeout, Token: g.resolveToken(), CA: ca})
}

// printJSON writes v as indented JSON.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	return newRoot(&globals{out: os.Stdout, errOut: os.Stderr, now: time.Now})
}

// newRoot builds the command tree around g: tests give it their own output and clock.
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "tandem",
		Short:         "tandem: a highly available scheduler and distribution server for report jobs",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	def := []string{client.ServerDefault}
	if env := os.Getenv("TANDEM_SERVER"); env != "" {
		def = strings.Split(env, ",")
	}
	root.PersistentFlags().StringSliceVar(&g.servers, "server", def, "server URL(s), comma separated; the client moves to the next one that answers (env TANDEM_SERVER)")
	root.PersistentFlags().StringVar(&g.token, "token", "", "API token (tdm_…) sent as Authorization: Bearer (env TANDEM_TOKEN; default: the saved login, else the bootstrap token of ./tandem-data or $TANDEM_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.ca, "ca", "", "PEM bundle of the CA(s) trusted for https:// servers (env TANDEM_CA; default: the system's roots)")
	timeout, envErr := client.TimeoutDefault, error(nil)
	if env := os.Getenv("TANDEM_CLIENT_TIMEOUT"); env != "" {
		if d, err := time.ParseDuration(env); err != nil || d <= 0 {
			envErr = fmt.Errorf("TANDEM_CLIENT_TIMEOUT=%q: want a positive duration such as \"3s\"", env)
		} else {
			timeout = d
		}
	}
	// Client commands refuse a bad timeout when they run; the server has no use for it.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch {
		case cmd.Name() == "server":
			return nil
		case envErr != nil && !cmd.Flags().Changed("client-timeout"):
			return envErr
		case g.timeout <= 0:
			return fmt.Errorf("--client-timeout must be a positive duration such as \"3s\", got %s", g.timeout)
		}
		return nil
	}
	root.PersistentFlags().DurationVar(&g.timeout, "client-timeout", timeout,
		"per server: give up connecting, or waiting for an answer to begin, after this long; then try the next server (env TANDEM_CLIENT_TIMEOUT)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON (a stable, documented shape)")
	root.AddCommand(newRoleCmds(g)...)
	root.AddCommand(newServerCmd(), newStatusCmd(g), newJobCmd(g), newRunCmd(g), newRunsCmd(g), newDeliveriesCmd(g), newEventsCmd(g), newOutputsCmd(g),
		newSwitchCmd(g), newNodeCmd(g), newScheduleCmd(g), newUserCmd(g), newTokenCmd(g), newLoginCmd(g), newWhoAmICmd(g), newSecretCmd(g),
		newRuleCmd(g), newNotificationsCmd(g))
	refuseUnknown(root)
	return root
}

// refuseUnknown makes every command that only groups others (job, runs, node) refuse an
// unknown subcommand with an error, instead of printing its help and succeeding; alone,
// it still prints its help.
func refuseUnknown(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknown(c)
	}
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = cobra.NoArgs
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string) int {
	worker.GuardMain() // started as a command's guard: runs the command and exits
	root := NewRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ce *client.Error
	var ve *job.ValidationError
	jsonOut, _ := root.PersistentFlags().GetBool("json")
	if cmd, _, ferr := root.Find(args); ferr == nil && cmd != nil {
		if v, ferr := cmd.Flags().GetBool("json"); ferr == nil {
			jsonOut = v
		}
	}
	switch {
	case jsonOut && errors.As(err, &ce):
		enc := json.NewEncoder(os.Stderr)
		_ = enc.Encode(map[string]string{"error": ce.Message, "field": ce.Field})
	case jsonOut && errors.As(err, &ve): // found locally (schedule next), told as the server would
		_ = json.NewEncoder(os.Stderr).Encode(map[string]string{"error": err.Error(), "field": ve.Field})
	case jsonOut:
		_ = json.NewEncoder(os.Stderr).Encode(map[string]string{"error": err.Error()})
	default:
		fmt.Fprintln(os.Stderr, "tandem:", err)
	}
	return 1
}
