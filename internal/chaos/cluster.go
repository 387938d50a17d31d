package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/store"
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
	n := &Node{c: c, spec: spec, dataDir: filepath.Join(c.opts.Dir, "node-"+spec.ID)}
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
func (c *Cluster) EpochStarts(ctx context.Context) ([]EpochStart, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*CallTimeout)
	defer cancel()
	evs, err := c.Client().Events(ctx, "primary.changed", 10000)
	if err != nil {
		return nil, fmt.Errorf("list primary.changed events: %w", err)
	}
	return EpochStartsFrom(evs), nil
}

// SlotTerms returns when each scheduler slot's holders took it, from the slot.taken
// events.
func (c *Cluster) SlotTerms(ctx context.Context) ([]SlotTerm, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*CallTimeout)
	defer cancel()
	evs, err := c.Client().Events(ctx, "slot.taken", 10000)
	if err != nil {
		return nil, fmt.Errorf("list slot.taken events: %w", err)
	}
	return SlotTermsFrom(evs), nil
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

// withoutEnv returns env without the variable key.
func withoutEnv(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

// ErrNotRunning is returned when a node's process is not running.
var ErrNotRunning = errors.New("node not running")

// Node is one node of a cluster: its current process, if any, and how to start it again.
type Node struct {
	c       *Cluster
	spec    NodeSpec
	dataDir string

	// Proxies (Options.Proxied), made at the first start and kept across restarts.
	peerProxy, dbProxy *Proxy

	mu          sync.Mutex
	skew        time.Duration // --clock-skew from the next start on
	cmd         *exec.Cmd
	addr        string        // http://host:port of the current process
	done        chan struct{} // closed when the current process has been reaped
	exitErr     error         // the current process's exit; valid after done
	frozen      bool
	incarnation int
}

// ID is the node id.
func (n *Node) ID() string { return n.spec.ID }

// Spec is how the node is started.
func (n *Node) Spec() NodeSpec { return n.spec }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// Addr is the API address (http://host:port) of the node's current or last process.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// PID is the current process's id, or 0.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.exitedLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Incarnation counts the node's processes: 1 for the first, 2 after one restart, ….
func (n *Node) Incarnation() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.incarnation
}

// Running reports whether the node's process is alive (frozen or not).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.exitedLocked()
}

// Frozen reports whether the node's process was stopped with SIGSTOP by the harness.
func (n *Node) Frozen() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.frozen && n.cmd != nil && !n.exitedLocked()
}

// answering returns the address if the process runs and is not frozen.
func (n *Node) answering() (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.exitedLocked() || n.frozen || n.addr == "" {
		return "", false
	}
	return n.addr, true
}

func (n *Node) exitedLocked() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Exited is closed once the current process has exited and been reaped.
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// ExitErr is the current process's exit error (nil for status 0); call after Exited.
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// Client returns an API client of this node alone.
func (n *Node) Client() *client.Client {
	return client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: n.c.Token()})
}

// makeProxies makes the node's proxies if the cluster is proxied.
func (n *Node) makeProxies() error {
	if !n.c.opts.Proxied {
		return nil
	}
	var err error
	if n.peerProxy, err = NewProxy(""); err != nil {
		return fmt.Errorf("start node %s: %w", n.spec.ID, err)
	}
	if n.c.IsSQLite() {
		return nil
	}
	u, err := url.Parse(n.c.db)
	if err != nil {
		return fmt.Errorf("start node %s: parse repository URL: %w", n.spec.ID, err)
	}
	if n.dbProxy, err = NewProxy(u.Host); err != nil {
		return fmt.Errorf("start node %s: %w", n.spec.ID, err)
	}
	return nil
}

// PeerProxy is the proxy in front of the node's inbound peer traffic (nil unless
// Options.Proxied): the other nodes reach this node only through it.
func (n *Node) PeerProxy() *Proxy { return n.peerProxy }

// DBProxy is the proxy between the node and its PostgreSQL repository (nil unless
// Options.Proxied on PostgreSQL).
func (n *Node) DBProxy() *Proxy { return n.dbProxy }

// SetClockSkew makes the node's next processes run with --clock-skew d (0: none).
func (n *Node) SetClockSkew(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.skew = d
}

// ClockSkew is the skew the node's current (or next) process runs with.
func (n *Node) ClockSkew() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.skew
}

// dbURL is the repository as this node reaches it: through its proxy, if it has one.
func (n *Node) dbURL() string {
	if n.dbProxy == nil {
		return n.c.db
	}
	u, err := url.Parse(n.c.db)
	if err != nil {
		return n.c.db // makeProxies parsed it already
	}
	u.Host = n.dbProxy.Addr()
	return u.String()
}

// args is the node's server command line.
func (n *Node) args() []string {
	s := n.spec
	args := []string{"server", "--data-dir", n.dataDir, "--db", n.dbURL(), "--listen", "127.0.0.1:0",
		"--node-id", s.ID, "--priority", strconv.Itoa(s.Priority), "--log-format", "json",
		"--shutdown-grace", ShutdownGrace.String()}
	switch {
	case s.Capacity == NoRuns:
		args = append(args, "--capacity", "0")
	case s.Capacity > 0:
		args = append(args, "--capacity", strconv.Itoa(s.Capacity))
	}
	if len(s.Tags) > 0 {
		args = append(args, "--tags", strings.Join(s.Tags, ","))
	}
	if n.peerProxy != nil {
		args = append(args, "--advertise", n.peerProxy.Addr())
	}
	if skew := n.ClockSkew(); skew != 0 {
		args = append(args, "--clock-skew", skew.String())
	}
	args = append(args, n.c.opts.Args...)
	return append(args, s.Args...)
}

// start starts a new process of the node and waits until it serves.
func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil && !n.exitedLocked() {
		n.mu.Unlock()
		return fmt.Errorf("start node %s: still running (pid %d)", n.spec.ID, n.cmd.Process.Pid)
	}
	n.incarnation++
	inc := n.incarnation
	n.mu.Unlock()

	args := n.args()
	cmd := exec.Command(n.c.opts.Binary, args...)
	// NODE names the node in the execution log lines that test jobs write.
	env := append(withoutEnv(os.Environ(), "TANDEM_SERVER"), "NODE="+n.spec.ID)
	cmd.Env = append(append(env, n.c.opts.Env...), n.spec.Env...)
	// The node dies with the test binary even when that is killed: nothing is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	serving := make(chan string, 1)
	w := &lineWriter{book: n.c.logs, node: n.spec.ID, incarnation: inc, serving: serving}
	cmd.Stdout, cmd.Stderr = w, w
	// Output copying ends when the process's pipes close; a job process that outlived a
	// kill could hold them open, and Wait must not hang on it.
	cmd.WaitDelay = 2 * time.Second
	// The parent-death signal fires when the OS thread that forked the node ends, not
	// the test binary, and a thread ends when a goroutine locked to it returns (pgtest's
	// server supervisor does, for one). So the node is forked on a thread locked to the
	// goroutine that waits for it, which unlocks only once the node has exited.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		n.mu.Lock()
		n.cmd, n.done, n.exitErr, n.frozen, n.addr = cmd, done, nil, false, ""
		n.mu.Unlock()
		started <- nil
		err := cmd.Wait()
		w.flush()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start node %s: %w", n.spec.ID, err)
	}
	n.c.logf("chaos: started node %s#%d (pid %d): %s", n.spec.ID, inc, cmd.Process.Pid, strings.Join(args, " "))

	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	select {
	case addr := <-serving:
		n.mu.Lock()
		n.addr = addr
		n.mu.Unlock()
		if n.peerProxy != nil {
			n.peerProxy.SetTarget(strings.TrimPrefix(addr, "http://"))
		}
		return nil
	case <-done:
		return fmt.Errorf("start node %s: exited before serving: %v", n.spec.ID, n.ExitErr())
	case <-ctx.Done():
		_ = n.Kill()
		return fmt.Errorf("start node %s: wait for its address: %w", n.spec.ID, ctx.Err())
	}
}

// Restart starts a new process of the node under the same id, data directory and
// flags; the previous one must have exited (Kill or Term it first).
func (n *Node) Restart(ctx context.Context) error {
	n.c.mu.Lock()
	closed := n.c.closed
	n.c.mu.Unlock()
	if closed {
		return fmt.Errorf("restart node %s: cluster closed", n.spec.ID)
	}
	return n.start(ctx)
}

// Signal sends sig to the node's process (not to its children).
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.exitedLocked() {
		return fmt.Errorf("signal node %s with %v: %w", n.spec.ID, sig, ErrNotRunning)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal node %s with %v: %w", n.spec.ID, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.frozen = true
	case syscall.SIGCONT:
		n.frozen = false
	}
	n.c.logf("chaos: %s to node %s (pid %d)", signalName(sig), n.spec.ID, n.cmd.Process.Pid)
	return nil
}

// signalName is the conventional name of the signals the harness sends.
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT",
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP"}
	if name, ok := names[sig]; ok {
		return name
	}
	return sig.String()
}

// Freeze stops the node's process with SIGSTOP, as a long pause would: it keeps its
// locks and connections, and answers nothing.
func (n *Node) Freeze() error { return n.Signal(syscall.SIGSTOP) }

// Thaw continues a frozen node with SIGCONT.
func (n *Node) Thaw() error { return n.Signal(syscall.SIGCONT) }

// Kill kills the node the way a host crash would: its process and every process it
// started (the runs it executes) get SIGKILL, at once. It returns when the node's
// process has been reaped.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	running := cmd != nil && !n.exitedLocked()
	n.mu.Unlock()
	if !running {
		return fmt.Errorf("kill node %s: %w", n.spec.ID, ErrNotRunning)
	}
	pid := cmd.Process.Pid
	killTree(pid)
	n.c.logf("chaos: SIGKILL to node %s (pid %d) and its processes", n.spec.ID, pid)
	select {
	case <-done:
		return nil
	case <-time.After(ExitTimeout):
		return fmt.Errorf("kill node %s: pid %d not reaped after %s", n.spec.ID, pid, ExitTimeout)
	}
}

// KillProcess kills the node's process alone with SIGKILL, leaving the processes it
// started to whatever tandem does about them (they must die with it). It returns when
// the node's process has been reaped.
func (n *Node) KillProcess() error {
	if err := n.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-n.Exited():
		return nil
	case <-time.After(ExitTimeout):
		return fmt.Errorf("kill node %s: not reaped after %s", n.spec.ID, ExitTimeout)
	}
}

// StopThrough asks node via to stop this node (`tandem node stop`, forwarded) and waits
// until this node's process exits; the error is its exit error (nil for status 0).
func (n *Node) StopThrough(ctx context.Context, via *Node) error {
	if _, err := via.Client().NodeAction(ctx, n.spec.ID, "stop"); err != nil {
		return fmt.Errorf("stop node %s through %s: %w", n.spec.ID, via.ID(), err)
	}
	select {
	case <-n.Exited():
		if err := n.ExitErr(); err != nil {
			return fmt.Errorf("stop node %s: %w", n.spec.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop node %s: wait for exit: %w", n.spec.ID, ctx.Err())
	}
}

// Term asks the node to stop gracefully (SIGTERM) and waits until it exits; the error
// is its exit error (nil for status 0).
func (n *Node) Term(ctx context.Context) error {
	if err := n.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.Exited():
		if err := n.ExitErr(); err != nil {
			return fmt.Errorf("stop node %s: %w", n.spec.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop node %s: wait for exit: %w", n.spec.ID, ctx.Err())
	}
}

// killTree SIGKILLs pid and all its descendants. Descendants are found through their
// parent pids, which a kill would reset (orphans move to init), so the whole tree is
// frozen first, level by level, until no new process appears; then all are killed.
func killTree(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	tree := map[int]bool{pid: true}
	for {
		grew := false
		for _, d := range descendants(pid) {
			if !tree[d] {
				tree[d] = true
				grew = true
				_ = syscall.Kill(d, syscall.SIGSTOP)
			}
		}
		if !grew {
			break
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for d := range tree {
		if d != pid {
			_ = syscall.Kill(d, syscall.SIGKILL)
			// A stopped process is killed by SIGKILL too; SIGCONT does no harm and makes
			// sure of it on kernels that deliver it only once the process runs.
			_ = syscall.Kill(d, syscall.SIGCONT)
		}
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid …"; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range children[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// IsSQLite reports whether the cluster's repository is a SQLite file.
func (c *Cluster) IsSQLite() bool {
	return !store.IsPostgresURL(c.db)
}

// sqlitePath is the repository's file path (without a sqlite:// prefix).
func (c *Cluster) sqlitePath() string { return strings.TrimPrefix(c.db, "sqlite://") }

// HoldsSQLiteWriteLock reports whether the node's process holds the write lock of the
// cluster's SQLite file: the WAL write lock (byte 120 of the -shm file) or a write lock
// on the file itself. A process frozen while holding it blocks every other process's
// writes until it runs again (docs/failover.md, "Limits to know"); tests that freeze a
// node on SQLite look here to tell that documented limit from a failure to take over.
// Read from /proc/locks, where the kernel lists every POSIX lock with its owner's pid.
func (n *Node) HoldsSQLiteWriteLock() (bool, error) {
	if !n.c.IsSQLite() {
		return false, nil
	}
	pid := n.PID()
	if pid == 0 {
		return false, fmt.Errorf("check SQLite write lock of node %s: %w", n.spec.ID, ErrNotRunning)
	}
	path := n.c.sqlitePath()
	inodes := map[uint64]int64{} // inode → the lock byte that means "writing" (-1: any)
	for suffix, off := range map[string]int64{"-shm": 120, "": -1} {
		var st syscall.Stat_t
		if err := syscall.Stat(path+suffix, &st); err == nil {
			inodes[st.Ino] = off
		}
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, fmt.Errorf("check SQLite write lock of node %s: %w", n.spec.ID, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		// "1: POSIX  ADVISORY  WRITE 7938 fe:00:9978003 120 120"; waiters show "->"
		// after the number and hold nothing.
		f := strings.Fields(line)
		if len(f) != 8 || f[1] != "POSIX" || f[3] != "WRITE" || f[4] != strconv.Itoa(pid) {
			continue
		}
		dev := strings.Split(f[5], ":")
		ino, err := strconv.ParseUint(dev[len(dev)-1], 10, 64)
		if err != nil {
			continue
		}
		off, ok := inodes[ino]
		if !ok {
			continue
		}
		start, _ := strconv.ParseInt(f[6], 10, 64)
		end, err := strconv.ParseInt(f[7], 10, 64)
		if f[7] == "EOF" {
			end, err = 1<<62, nil
		}
		if err == nil && (off < 0 || (start <= off && off <= end)) {
			return true, nil
		}
	}
	return false, nil
}
