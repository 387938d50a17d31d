package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/store"
)

// ErrNotRunning is returned when a node's process is not running.
var ErrNotRunning = errors.New("node not running")

// Node is one node of a cluster: its current process, if any, and how to start it again.
type Node struct {
	l       *launcher
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
	return client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: n.l.token()})
}

// makeProxies makes the node's proxies if the cluster is proxied.
func (n *Node) makeProxies() error {
	if !n.l.opts.Proxied {
		return nil
	}
	var err error
	if n.peerProxy, err = NewProxy(""); err != nil {
		return fmt.Errorf("start node %s: %w", n.spec.ID, err)
	}
	if n.l.isSQLite() {
		return nil
	}
	u, err := url.Parse(n.l.db)
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
		return n.l.db
	}
	u, err := url.Parse(n.l.db)
	if err != nil {
		return n.l.db // makeProxies parsed it already
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
	args = append(args, n.l.opts.Args...)
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
	cmd := exec.Command(n.l.opts.Binary, args...)
	// NODE names the node in the execution log lines that test jobs write.
	env := append(withoutEnv(os.Environ(), "TANDEM_SERVER"), "NODE="+n.spec.ID)
	cmd.Env = append(append(env, n.l.opts.Env...), n.spec.Env...)
	// The node dies with the test binary even when that is killed: nothing is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	serving := make(chan string, 1)
	w := &lineWriter{book: n.l.logs, node: n.spec.ID, incarnation: inc, serving: serving}
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
	n.l.logf("chaos: started node %s#%d (pid %d): %s", n.spec.ID, inc, cmd.Process.Pid, strings.Join(args, " "))

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
	if n.l.closed() {
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
	n.l.logf("chaos: %s to node %s (pid %d)", signalName(sig), n.spec.ID, n.cmd.Process.Pid)
	return nil
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
	n.l.logf("chaos: SIGKILL to node %s (pid %d) and its processes", n.spec.ID, pid)
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

// launcher is what a node needs of its cluster to start its processes and to be read
// (not the cluster itself: a node never reaches its siblings).
type launcher struct {
	opts   Options
	db     string
	logs   *logBook
	logf   func(format string, args ...any)
	token  func() string
	closed func() bool
}

func (l *launcher) isSQLite() bool     { return !store.IsPostgresURL(l.db) }
func (l *launcher) sqlitePath() string { return strings.TrimPrefix(l.db, "sqlite://") }
