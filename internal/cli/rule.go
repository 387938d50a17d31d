package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/client"
)

func newRuleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Event rules that notify by email or webhook: apply, list, show, delete, test",
	}
	cmd.AddCommand(newRuleApplyCmd(g), newRuleListCmd(g), newRuleShowCmd(g), newRuleDeleteCmd(g), newRuleTestCmd(g))
	return cmd
}

func newRuleApplyCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or replace the rules of a rule file (TOML [[rule]] tables) by name, all or none",
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
				return fmt.Errorf("read rule file: %w", err)
			}
			res, err := g.client().RuleApply(cmd.Context(), data)
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
				fmt.Fprintf(g.out, "rule %s %s (on %s)\n", r.Name, verb, strings.Join(r.Rule.On, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rule file, or - for standard input")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newRuleListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules, err := g.client().RuleList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rules)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tON\tWHEN\tREPEAT\tCHANNELS")
			for _, r := range rules {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.On, ","), short(dash(r.When), 50), r.Repeat, channels(r))
			}
			return w.Flush()
		},
	}
}

func channels(r wire.Rule) string {
	var cs []string
	if r.Email != nil {
		cs = append(cs, "email "+strings.Join(r.Email.To, ","))
	}
	if r.Webhook != nil {
		cs = append(cs, "webhook "+r.Webhook.URL)
	}
	if len(cs) == 0 {
		return "- (recorded only)"
	}
	return strings.Join(cs, "; ")
}

func newRuleShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a rule and its latest notifications",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().RuleGet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ns, err := g.client().NotificationList(cmd.Context(), client.NotificationListParams{Rule: r.Name, Limit: 20})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(struct {
					wire.Rule
					Notifications []wire.Notification `json:"notifications"`
				}{r, ns})
			}
			fmt.Fprintf(g.out, "name:      %s\non:        %s\nwhen:      %s\nrepeat:    %s\nkey:       %s\nchannels:  %s\nsince:     event %d\nupdated:   %s\n",
				r.Name, strings.Join(r.On, ", "), dash(r.When), r.Repeat, r.Key, channels(r), r.SinceEvent, r.UpdatedAt.Format("2006-01-02 15:04:05Z07:00"))
			if len(ns) == 0 {
				fmt.Fprintln(g.out, "notifications: none")
				return nil
			}
			fmt.Fprintln(g.out, "notifications (latest first):")
			return printNotifications(g, ns)
		},
	}
}

func printNotifications(g *globals, ns []wire.Notification) error {
	w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tRULE\tEVENT\tTYPE\tKIND\tKEY\tSTATE\tSUBJECT")
	for _, n := range ns {
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Rule, n.Event, n.EventType, n.Kind, short(n.Key, 30), n.State, short(n.Subject, 60))
	}
	return w.Flush()
}

func newRuleDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a rule (its notifications stay as history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().RuleDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.out, "rule %s deleted\n", args[0])
			return nil
		},
	}
}

func newRuleTestCmd(g *globals) *cobra.Command {
	var event int64
	cmd := &cobra.Command{
		Use:   "test NAME --event ID",
		Short: "Show whether a rule matches a stored event and the message it would send, sending nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if event <= 0 {
				return fmt.Errorf("--event must be an event id (see tandem events), got %d", event)
			}
			res, err := g.client().RuleTest(cmd.Context(), args[0], event)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			verdict := "does not match"
			if res.Matched {
				verdict = "matches"
			}
			fmt.Fprintf(g.out, "rule %s %s event %d (%s: %s)\n%s\n", res.Rule, verdict, res.Event.ID, res.Event.Type, res.Event.Message, res.Why)
			if res.Matched {
				fmt.Fprintf(g.out, "\nkey:      %s\nto:       %s\nsubject:  %s\n\n%s", res.Key, dash(strings.Join(res.Channels, "; ")), res.Subject, res.Body)
				if !strings.HasSuffix(res.Body, "\n") {
					fmt.Fprintln(g.out)
				}
			}
			if len(res.Notifications) > 0 {
				fmt.Fprintln(g.out, "\nrecorded for this event:")
				return printNotifications(g, res.Notifications)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&event, "event", 0, "the id of a stored event (tandem events --json shows ids)")
	_ = cmd.MarkFlagRequired("event")
	return cmd
}

func newNotificationsCmd(g *globals) *cobra.Command {
	var p client.NotificationListParams
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "List the notifications rules made (sent, suppressed as repeats, digests), newest first; show one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := g.client().NotificationList(cmd.Context(), p)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(ns)
			}
			return printNotifications(g, ns)
		},
	}
	cmd.Flags().StringVar(&p.Rule, "rule", "", "only this rule's")
	cmd.Flags().Int64Var(&p.Event, "event", 0, "only those about this event")
	cmd.Flags().IntVar(&p.Limit, "limit", 50, "at most this many")
	cmd.AddCommand(&cobra.Command{
		Use:   "show ID",
		Short: "Show a notification with its text and delivery records",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("notification id must be a positive whole number, got %q", args[0])
			}
			n, err := g.client().NotificationGet(cmd.Context(), id)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(n)
			}
			fmt.Fprintf(g.out, "notification %d: rule %s, %s of event %d (%s), key %q, %s\nsubject: %s\n\n%s\n", n.ID, n.Rule, n.Kind, n.Event,
				n.EventType, n.Key, n.State, n.Subject, n.Body)
			for _, d := range n.Deliveries {
				fmt.Fprintf(g.out, "delivery %d (%s): %s %s, %s after %d attempts %s\n", d.ID, d.Key, d.Channel, d.Target, d.State, d.Attempts, dash(last(d)))
			}
			return nil
		},
	})
	return cmd
}
