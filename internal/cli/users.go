package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/client"
)

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Users who log in with a password (admin)"}
	var role string
	add := &cobra.Command{
		Use:   "add NAME --role ROLE",
		Short: "Add a user; the password is read from the terminal (or the first line of stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(os.Stdin, "password for "+args[0]+": ", true)
			if err != nil {
				return err
			}
			u, err := g.client().UserAdd(cmd.Context(), args[0], role, pw)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(u)
			}
			fmt.Fprintf(g.out, "user %s added (%s)\n", u.Name, u.Role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "viewer", "viewer, operator, admin or sync")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := g.client().UserList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(us)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tCREATED\tUPDATED")
			for _, u := range us {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.Format(time.RFC3339), u.UpdatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user (their login sessions end)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().UserDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "user %s deleted\n", args[0])
			return nil
		},
	}
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password (read from the terminal or stdin); their login sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(os.Stdin, "new password for "+args[0]+": ", true)
			if err != nil {
				return err
			}
			if err := g.client().UserPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "password of %s changed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, del, passwd)
	return cmd
}

func newLoginCmd(g *globals) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "login --user NAME",
		Short: "Log in with a password (read from the terminal or stdin); the session token is saved for the server (owner-only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return fmt.Errorf("--user is required")
			}
			pw, err := readPassword(os.Stdin, "password for "+user+": ", false)
			if err != nil {
				return err
			}
			res, err := g.client().Login(cmd.Context(), user, pw)
			if err != nil {
				return err
			}
			m, err := loadSessions()
			if err != nil {
				return err
			}
			m[normalServer(g.servers[0])] = session{Token: res.Token, User: res.User}
			p, err := saveSessions(m)
			if err != nil {
				return fmt.Errorf("save the session: %w", err)
			}
			fmt.Fprintf(g.out, "logged in as %s (%s) until %s; session saved in %s\n", res.User, res.Role, res.ExpiresAt.Format(time.RFC3339), p)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user name")
	return cmd
}

// savedSession is the session tandem login saved for the first server, with the saved
// sessions and its key in them; hint ends the error when there is none.
func savedSession(g *globals, hint string) (map[string]session, string, session, error) {
	m, err := loadSessions()
	if err != nil {
		return nil, "", session{}, err
	}
	key := normalServer(g.servers[0])
	sess, ok := m[key]
	if !ok {
		return nil, "", session{}, fmt.Errorf("no login is saved for %s%s", key, hint)
	}
	return m, key, sess, nil
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session tandem login saved for the server, and remove it from this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, key, sess, err := savedSession(g, "")
			if err != nil {
				return err
			}
			// The saved session's own token, whatever --token or TANDEM_TOKEN say.
			lerr := g.clientWith(sess.Token).Logout(cmd.Context())
			var ce *client.Error
			ended := errors.As(lerr, &ce) && ce.Status == http.StatusUnauthorized // expired or ended already
			delete(m, key)
			p, err := saveSessions(m)
			if err != nil {
				return fmt.Errorf("remove the session from %s: %w", p, err)
			}
			switch {
			case lerr == nil:
				fmt.Fprintf(g.out, "logged out: the session of %s ended and was removed from %s\n", sess.User, p)
			case ended:
				fmt.Fprintf(g.out, "the session of %s had already ended; removed from %s\n", sess.User, p)
			default:
				return fmt.Errorf("session of %s removed from %s, but the server could not end it (it lasts until it expires): %w", sess.User, p, lerr)
			}
			return nil
		},
	}
}

func newPasswdCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd",
		Short: "Change your own password (you are logged in with tandem login): the current one, then the new one, from the terminal or stdin's first two lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, key, sess, err := savedSession(g, ": log in first (tandem login --user NAME); an admin sets anyone's password with tandem user passwd NAME")
			if err != nil {
				return err
			}
			in := bufio.NewReader(os.Stdin)
			cur, err := readPassword(stdinOr(in), "current password: ", false)
			if err != nil {
				return err
			}
			pw, err := readPassword(stdinOr(in), "new password: ", true)
			if err != nil {
				return err
			}
			res, err := g.clientWith(sess.Token).OwnPassword(cmd.Context(), cur, pw)
			if err != nil {
				return err
			}
			m[key] = session{Token: res.Token, User: res.User}
			p, err := saveSessions(m)
			if err != nil {
				return fmt.Errorf("save the new session: %w", err)
			}
			fmt.Fprintf(g.out, "password of %s changed; your other sessions ended, a new one is saved in %s\n", res.User, p)
			return nil
		},
	}
}

func newWhoAmICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Say whose token the client sends, and its role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := g.client().WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(w)
			}
			fmt.Fprintf(g.out, "%s (%s)\n", w.Name, w.Role)
			return nil
		},
	}
}

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "API tokens (admin)"}
	var role, expires string
	create := &cobra.Command{
		Use:   "create NAME --role ROLE [--expires D]",
		Short: "Make an API token; its secret is printed this once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.client().TokenCreate(cmd.Context(), args[0], role, expires)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(t)
			}
			fmt.Fprintf(g.out, "token %s (%s) created; its secret, shown this once:\n%s\n", t.Token.Name, t.Token.Role, t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "viewer, operator, admin or sync")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, such as 720h or 30d (default: never expires)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := g.client().TokenList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(ts)
			}
			w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tCREATED BY\tCREATED\tEXPIRES\tLAST USED")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedBy, t.CreatedAt.Format(time.RFC3339), when(t.ExpiresAt), when(t.LastUsedAt))
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().TokenRevoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
