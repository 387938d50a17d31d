package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Timeouts of the harness's own steps. They are generous because the nodes are usually
// race-detector builds on a small, shared machine; the tests' own deadlines say what
// tandem must achieve.
const (
	// StartTimeout bounds a node's start, until it prints its address.
	StartTimeout = 60 * time.Second
	// ExitTimeout bounds the wait for a killed node to be reaped.
	ExitTimeout = 15 * time.Second
	// CallTimeout bounds one API call made while polling, so that a node that stopped
	// answering (frozen, say) costs one poll, not the whole wait.
	CallTimeout = 3 * time.Second
	// ShutdownGrace is given to every node (--shutdown-grace): longer than the soak's
	// longest run, so a graceful stop lets every run in flight finish (the drain check),
	// and shorter than the default 30s.
	ShutdownGrace = 6 * time.Second
)

// NoRuns as a NodeSpec's Capacity starts the node with --capacity 0: it executes nothing.
const NoRuns = -1

// Options configures a Cluster.
type Options struct {
	// Binary is the tandem binary to run. Required.
	Binary string
	// Dir holds the nodes' data directories, the SQLite file and the execution logs.
	// Required; it must exist, and is not removed by Close.
	Dir string
	// DB is the repository every node uses: a postgres:// URL, or a SQLite path. Default:
	// Dir/tandem.db, shared by all nodes of the cluster.
	DB string
	// Args are extra server flags given to every node (e.g. --failback).
	Args []string
	// Env are extra environment variables (KEY=VALUE) given to every node.
	Env []string
	// Logf, if set, reports what the harness does (starts, signals), not server lines.
	Logf func(format string, args ...any)
	// Proxied puts a fault-injecting Proxy of its own in front of each node's inbound
	// peer traffic (the node advertises the proxy's address, so other nodes reach it
	// through it; the harness calls the node directly), and, on PostgreSQL, between the
	// node and the database (its --db URL names the proxy). See Node.PeerProxy and
	// Node.DBProxy.
	Proxied bool
}

// NodeSpec describes one node of a cluster.
type NodeSpec struct {
	ID       string
	Priority int
	// Capacity is --capacity; 0 keeps the server's default, NoRuns means --capacity 0.
	Capacity int
	Tags     []string
	// Args are extra server flags for this node, after the cluster's.
	Args []string
	// Env are extra environment variables for this node, after the cluster's.
	Env []string
}

// Cluster is a set of tandem server processes over one repository. Its methods are safe
// for concurrent use.
type Cluster struct {
	opts Options
	db   string
	logs *logBook

	mu     sync.Mutex
	nodes  []*Node
	closed bool
}

// New prepares a cluster; Start starts its nodes.
func New(opts Options) (*Cluster, error) {
	if opts.Binary == "" || opts.Dir == "" {
		return nil, errors.New("new cluster: Options.Binary and Options.Dir are required")
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("new cluster: find binary: %w", err)
	}
	db := opts.DB
	if db == "" {
		db = filepath.Join(opts.Dir, "tandem.db")
	}
	return &Cluster{opts: opts, db: db, logs: newLogBook()}, nil
}

// DB is the repository the nodes share.
func (c *Cluster) DB() string { return c.db }

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.opts.Dir }

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// Start starts one node and returns once it serves its API.
func (c *Cluster) Start(ctx context.Context, spec NodeSpec) (*Node, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("start node %s: cluster closed", spec.ID)
	}
	if c.node(spec.ID) != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("start node %s: already in the cluster (use Restart)", spec.ID)
	}
	n := &Node{l: c.launcher(), spec: spec, dataDir: filepath.Join(c.opts.Dir, "node-"+spec.ID)}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if err := n.makeProxies(); err != nil {
		return nil, err
	}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// StartAll starts several nodes at once and returns them in the order given.
func (c *Cluster) StartAll(ctx context.Context, specs ...NodeSpec) ([]*Node, error) {
	out := make([]*Node, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { out[i], errs[i] = c.Start(ctx, s) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// StartWithStandbys starts the first node and waits until it is primary, then starts the
// others at once and waits until each stands by: a cluster whose roles are known.
func (c *Cluster) StartWithStandbys(ctx context.Context, primary NodeSpec, standbys ...NodeSpec) error {
	if _, err := c.Start(ctx, primary); err != nil {
		return err
	}
	if _, _, err := c.WaitPrimary(ctx); err != nil {
		return err
	}
	if _, err := c.StartAll(ctx, standbys...); err != nil {
		return err
	}
	for _, s := range standbys {
		if _, err := c.WaitMode(ctx, s.ID, "standby"); err != nil {
			return err
		}
	}
	return nil
}

// node returns the node with the id, or nil; c.mu must be held.
func (c *Cluster) node(id string) *Node {
	for _, n := range c.nodes {
		if n.spec.ID == id {
			return n
		}
	}
	return nil
}

// Node returns the node with the id, or nil.
func (c *Cluster) Node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node(id)
}

// Nodes returns every node ever started, in start order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Close ends every process of the cluster: frozen ones are continued first (a stopped
// process cannot be reaped until it runs), then every node's process tree is killed.
// It returns once all are reaped. Safe to call twice.
func (c *Cluster) Close() error {
	c.mu.Lock()
	c.closed = true
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		if err := n.Thaw(); err != nil && !errors.Is(err, ErrNotRunning) {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		if err := n.Kill(); err != nil && !errors.Is(err, ErrNotRunning) {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		for _, p := range []*Proxy{n.peerProxy, n.dbProxy} {
			if p != nil {
				if err := p.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close proxy of node %s: %w", n.spec.ID, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Logs returns every log line the cluster's processes wrote so far, in the order read.
func (c *Cluster) Logs() []LogLine { return c.logs.all() }

// Tail returns the cluster's last n log lines, one per line.
func (c *Cluster) Tail(n int) string {
	ls := c.logs.all()
	var b strings.Builder
	for _, l := range ls[max(len(ls)-n, 0):] {
		b.WriteString(l.String() + "\n")
	}
	return b.String()
}

// Mark is the position of the next log line, for WaitLog.
func (c *Cluster) Mark() int { return c.logs.mark() }

// Faults returns the lines that show a process failed in a way no test should accept:
// a data race found by the race detector, a panic, a fatal runtime error.
func (c *Cluster) Faults() []LogLine { return c.logs.faults() }

// DumpLogs writes every log line, one per line, prefixed with its node and incarnation.
func (c *Cluster) DumpLogs(w io.Writer) {
	for _, l := range c.logs.all() {
		fmt.Fprintf(w, "%s#%d %s\n", l.Node, l.Incarnation, l.Raw)
	}
}

// launcher is what the cluster's nodes need of it.
func (c *Cluster) launcher() *launcher {
	return &launcher{opts: c.opts, db: c.db, logs: c.logs, logf: c.logf, token: c.Token,
		closed: func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.closed
		}}
}
