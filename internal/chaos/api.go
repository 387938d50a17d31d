package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
)

// addrs returns the API addresses of the nodes that answer (running, not frozen) and
// are not excluded, in start order.
func (c *Cluster) addrs(except ...string) []string {
	var out []string
	for _, n := range c.Nodes() {
		if slices.Contains(except, n.spec.ID) {
			continue
		}
		if a, ok := n.answering(); ok {
			out = append(out, a)
		}
	}
	return out
}

// Client returns an API client over the nodes that answer now, except the ones named.
// A frozen node is never in the list: its kernel still accepts connections, and a
// request to it would hang instead of moving on to the next server.
func (c *Cluster) Client(except ...string) *client.Client {
	return client.NewConfig(client.Config{Servers: c.addrs(except...), Token: c.Token()})
}

// Token is the cluster's bootstrap admin token, read from the data directory of the
// node that made it ("" before one did).
func (c *Cluster) Token() string {
	t, _ := auth.ReadBootstrapToken(c.tokenDir())
	return t
}

// tokenDir is the data directory of the node that made the bootstrap admin token.
func (c *Cluster) tokenDir() string {
	c.mu.Lock()
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	for _, n := range nodes {
		if _, err := auth.ReadBootstrapToken(n.dataDir); err == nil {
			return n.dataDir
		}
	}
	return ""
}

// Status returns the server-status table from any answering node.
func (c *Cluster) Status(ctx context.Context) (api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	st, err := c.Client().Status(ctx)
	if err != nil {
		return st, fmt.Errorf("get status: %w", err)
	}
	return st, nil
}

// Runs returns every run of a job, newest first.
func (c *Cluster) Runs(ctx context.Context, job string) ([]api.Run, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*CallTimeout)
	defer cancel()
	rs, err := c.Client().RunList(ctx, client.RunListParams{Job: job, Limit: 10000})
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", job, err)
	}
	return rs, nil
}

// EpochStarts returns when each primary epoch began, from the primary.changed events.
func (c *Cluster) EpochStarts(ctx context.Context) ([]history.EpochStart, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*CallTimeout)
	defer cancel()
	evs, err := c.Client().Events(ctx, "primary.changed", 10000)
	if err != nil {
		return nil, fmt.Errorf("list primary.changed events: %w", err)
	}
	return history.EpochStartsFrom(evs), nil
}

// SlotTerms returns when each scheduler slot's holders took it, from the slot.taken
// events.
func (c *Cluster) SlotTerms(ctx context.Context) ([]history.SlotTerm, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*CallTimeout)
	defer cancel()
	evs, err := c.Client().Events(ctx, "slot.taken", 10000)
	if err != nil {
		return nil, fmt.Errorf("list slot.taken events: %w", err)
	}
	return history.SlotTermsFrom(evs), nil
}

// CLI runs the tandem client command line against the answering nodes (--server with
// all of them) and returns its stdout. The error carries stderr.
func (c *Cluster) CLI(ctx context.Context, args ...string) (string, error) {
	args = append(slices.Clone(args), "--server", strings.Join(c.addrs(), ","))
	cmd := exec.CommandContext(ctx, c.opts.Binary, args...)
	// The CLI finds the bootstrap token as on the nodes' host: in their data directory.
	cmd.Env = append(withoutEnv(os.Environ(), "TANDEM_SERVER"), "TANDEM_DATA_DIR="+c.tokenDir())
	cmd.WaitDelay = time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("run tandem %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
