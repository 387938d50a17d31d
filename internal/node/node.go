// Package node composes one running tandem node: the repository, the lease keeper, the
// worker, heartbeats, the API, and, while this node is primary and not suspended, the
// scheduler, the dispatcher and the reaper of lost nodes. It owns every goroutine it
// starts and waits for them on Stop. Tests embed nodes in-process through New, Start and
// Stop.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/clock"
	"github.com/tandemhq/tandem/internal/cluster"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/lease"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/worker"
)

// Node modes as shown in the status table (see internal/cluster).
const (
	ModePrimary   = cluster.ModePrimary
	ModeSuspended = cluster.ModeSuspended
	ModeStandby   = cluster.ModeStandby
	ModeHeld      = cluster.ModeHeld
	ModeWorker    = cluster.ModeWorker
	ModeStopping  = cluster.ModeStopping
	ModeStopped   = cluster.ModeStopped
	ModeLost      = cluster.ModeLost
)

// OutputSweepDefault is how often, at most, a node deletes its outputs past retention:
// every tenth of the retention, at least every 10 minutes.
const OutputSweepDefault = 10 * time.Minute

// Node is one tandem server.
type Node struct {
	cfg     config.Config
	holder  string // this process as a lease holder
	store   store.Store
	log     *slog.Logger
	clock   *clock.Clock // wall clock corrected to the repository's
	started time.Time    // on the corrected clock: shown to operators
	upSince time.Time    // on this host's monotonic clock: for how long it has been up

	keeper  *lease.Keeper
	members *cluster.Membership
	worker  *worker.Worker
	http    *http.Server
	ln      net.Listener
	peers   *http.Client // node-to-node calls: hints and forwarded operator actions

	mu        sync.Mutex
	epoch     int64 // while primary
	suspended bool
	held      bool
	stopping  bool
	role      *role  // services running while primary and not suspended
	reaper    func() // stops the reaper of lost nodes, running while primary
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopped   bool
	stopReq   chan struct{}
	stopOnce  sync.Once
	restart   bool
	release   func() // liveness lock
}

// New prepares a node over an open repository; Start runs it.
func New(cfg config.Config, st store.Store, log *slog.Logger) *Node {
	n := &Node{cfg: cfg, store: st, log: log.With("node", cfg.NodeID), holder: Holder(cfg.NodeID), clock: clock.New(cfg.ClockSkew),
		stopReq: make(chan struct{}), peers: &http.Client{Timeout: 10 * time.Second}}
	n.worker = worker.New(worker.Params{Store: st, Log: n.log.With("component", "worker"), Node: cfg.NodeID,
		DataDir: cfg.DataDir, Capacity: cfg.Capacity, OutputLimit: cfg.OutputLimit, OnFinish: n.RunsQueued, Now: n.clock.Now})
	n.members = cluster.New(cluster.Params{Store: st, Log: n.log.With("component", "cluster"), Self: cfg.NodeID,
		Interval: cfg.Heartbeat.Interval, MaxMissed: cfg.Heartbeat.MaxMissed, Now: n.clock.Now,
		Describe: n.describe, Event: n.event, Requeued: n.RunsQueued})
	lv, _ := st.(store.Liveness)
	n.keeper = lease.New(lease.Params{Store: st, Liveness: lv, Log: n.log.With("component", "lease"), Holder: n.holder,
		Node: cfg.NodeID, Renew: cfg.Lease.Renew, TTL: cfg.Lease.TTL, Margin: cfg.Lease.Margin,
		Eligible: n.eligible, Rank: func(ctx context.Context) int { return n.members.Rank(ctx, n.cfg.Priority) }, Successor: n.bestStandby, Elected: n.elected, Deposed: n.deposed})
	return n
}

// Holder names this process of a node as a lease holder: the node id and an
// incarnation, so a restarted process never inherits its predecessor's epoch.
func Holder(nodeID string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return nodeID + "#" + hex.EncodeToString(b[:])
}

// HolderNode returns the node id of a lease holder.
func HolderNode(holder string) string {
	id, _, _ := strings.Cut(holder, "#")
	return id
}

// Addr is the address the API listens on (after Start).
func (n *Node) Addr() string {
	if n.ln == nil {
		return n.cfg.Listen
	}
	return n.ln.Addr().String()
}

// Start opens the listener and starts every service. It returns once the node serves.
func (n *Node) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.Listen, err)
	}
	n.ln = ln
	if n.cfg.Advertise == n.cfg.Listen {
		n.cfg.Advertise = ln.Addr().String() // a :0 port is known only now
	}
	n.syncClock(ctx)
	n.started, n.upSince = n.clock.Now(), time.Now()
	if lv, ok := n.store.(store.Liveness); ok {
		if n.release, err = lv.LivenessHold(ctx, n.holder); err != nil {
			n.log.Warn("no liveness lock: standbys will wait for the lease to expire if this process dies", "err", err)
		}
	}
	mux := http.NewServeMux()
	api.NewServer(n.store, n, n.log.With("component", "api")).Register(mux)
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.log.Info("node starting", "listen", ln.Addr().String(), "db", n.cfg.RedactedDB(), "capacity", n.cfg.Capacity,
		"priority", n.cfg.Priority, "mode", n.Mode())
	if err := n.heartbeat(ctx); err != nil {
		n.log.Warn("first heartbeat failed", "err", err)
	}
	n.goFn(func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	})
	n.goFn(func() { _ = n.worker.Run(ctx) })
	n.goFn(func() { _ = n.keeper.Run(ctx) })
	n.goFn(func() { n.heartbeats(ctx) })
	n.goFn(func() { n.sweepOutputs(ctx) })
	if n.cfg.Failback {
		n.goFn(func() { n.failback(ctx) })
	}
	if nt, ok := n.store.(store.Notifier); ok {
		n.goFn(func() { _ = nt.Listen(ctx, n.wakeup) })
	}
	n.event("node.joined", fmt.Sprintf("node %s started at %s", n.cfg.NodeID, n.cfg.Advertise), nil)
	return nil
}

func (n *Node) goFn(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// StopRequested is closed when an operator asked this node to stop or restart.
func (n *Node) StopRequested() <-chan struct{} { return n.stopReq }

// RestartRequested reports whether the stop was asked for as a restart.
func (n *Node) RestartRequested() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.restart
}

func (n *Node) requestStop(restart bool) {
	n.mu.Lock()
	n.restart = n.restart || restart
	n.mu.Unlock()
	n.stopOnce.Do(func() { close(n.stopReq) })
}

// Stop shuts the node down gracefully: it stops firing and dispatching, resigns the
// lease (to the best standby) so a standby takes over at once, lets running runs finish
// within the shutdown grace period (then cancels them and records that), and stops
// serving. Safe to call twice; ctx bounds the whole shutdown.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped || n.cancel == nil {
		n.stopped = true
		n.mu.Unlock()
		return nil
	}
	n.stopped, n.stopping = true, true
	n.mu.Unlock()
	n.log.Info("stopping: resigning the lease, waiting for running runs", "grace", n.cfg.ShutdownGrace)
	// Shown as stopping first, so the primary gives this node no more work; the
	// repository refuses assignments to it from here on.
	if err := n.heartbeat(ctx); err != nil {
		n.log.Warn("cannot record that this node is stopping", "err", err)
	}
	n.cancel() // lease keeper resigns, scheduler and dispatcher stop, worker takes nothing new
	n.releaseAssigned(ctx)
	grace, cancel := context.WithTimeout(ctx, n.cfg.ShutdownGrace)
	defer cancel()
	werr := n.worker.Shutdown(grace)
	herr := n.http.Shutdown(ctx)
	n.wg.Wait()
	_ = n.heartbeatMode(context.WithoutCancel(ctx), ModeStopped)
	n.event("node.stopped", fmt.Sprintf("node %s stopped", n.cfg.NodeID), nil)
	if n.release != nil {
		n.release()
	}
	n.log.Info("node stopped")
	return errors.Join(werr, herr)
}

// releaseAssigned queues again the runs assigned to this node that it has not started,
// so that another node runs them (without spending an attempt).
func (n *Node) releaseAssigned(ctx context.Context) {
	ids, err := n.store.RunRelease(ctx, store.RunReleaseParams{Node: n.cfg.NodeID, Now: n.clock.Now(),
		Reason: fmt.Sprintf("node %s stopped before starting the run; queued again", n.cfg.NodeID)})
	switch {
	case err != nil:
		n.log.Warn("cannot release the runs assigned to this node; the primary will", "err", err)
	case len(ids) > 0:
		n.log.Info(fmt.Sprintf("released %d assigned runs this node had not started", len(ids)), "runs", ids)
	}
}

// syncClock measures this node's clock against the repository's (at start and with
// every heartbeat); a large difference is logged once, and corrected either way.
func (n *Node) syncClock(ctx context.Context) {
	_, was := n.clock.Offset()
	err := n.clock.Sync(ctx, func(ctx context.Context) (time.Time, error) {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.Lease.TTL)
		defer cancel()
		l, err := n.store.LeaseGet(ctx, store.PrimaryLease)
		if err == nil && l.Now.IsZero() {
			err = errors.New("the repository did not tell its time")
		}
		return l.Now, err
	})
	if off, ok := n.clock.Offset(); err == nil && ok && !was && off.Abs() >= time.Second {
		n.log.Warn(fmt.Sprintf("this host's clock is %s off the repository's; this node follows the repository's clock", (-off).Round(time.Millisecond)))
	}
}

// Now is this node's wall clock corrected to the repository's.
func (n *Node) Now() time.Time { return n.clock.Now() }

// heartbeats records this node's liveness and load every interval.
func (n *Node) heartbeats(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.heartbeat(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("heartbeat failed", "err", err)
			}
			n.syncClock(ctx)
		}
	}
}

func (n *Node) heartbeat(ctx context.Context) error { return n.members.Heartbeat(ctx, "") }

func (n *Node) heartbeatMode(ctx context.Context, mode string) error {
	return n.members.Heartbeat(ctx, mode)
}

// describe is this node as its heartbeats report it.
func (n *Node) describe() store.Node {
	return store.Node{ID: n.cfg.NodeID, Address: n.cfg.Advertise, Mode: n.Mode(), Priority: n.cfg.Priority,
		Capacity: n.cfg.Capacity, Running: n.worker.Running(), Tags: n.cfg.Tags, StartedAt: n.started}
}

// sweepOutputs deletes this node's outputs of runs that ended longer ago than retention.
func (n *Node) sweepOutputs(ctx context.Context) {
	t := time.NewTicker(min(OutputSweepDefault, max(n.cfg.OutputRetention/10, time.Second)))
	defer t.Stop()
	for {
		if err := n.SweepOutputs(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("output sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepOutputs deletes the outputs past retention once.
func (n *Node) SweepOutputs(ctx context.Context) error {
	gone, err := n.store.OutputExpire(ctx, store.OutputExpireParams{Node: n.cfg.NodeID, Before: n.clock.Now().Add(-n.cfg.OutputRetention)})
	if err != nil {
		return err
	}
	return removeOutputs(n.cfg.DataDir, gone, n.log)
}

// OutputPath implements api.Backend.
func (n *Node) OutputPath(o store.Output) string {
	return filepath.Join(n.cfg.DataDir, "outputs", strconv.FormatInt(o.RunID, 10), strconv.Itoa(o.Attempt), filepath.FromSlash(o.Name))
}

// NodeID implements api.Backend.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// NodeAddress implements api.Backend.
func (n *Node) NodeAddress(ctx context.Context, id string) string {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return ""
	}
	for _, nd := range nodes {
		if nd.ID == id {
			return nd.Address
		}
	}
	return ""
}

// CancelLocal implements api.Backend.
func (n *Node) CancelLocal(runID int64, why string) { n.worker.Cancel(runID, why) }

// JobsChanged implements api.Backend.
func (n *Node) JobsChanged() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.role != nil {
		n.role.sched.Wake()
	}
}

// RunsQueued implements api.Backend.
func (n *Node) RunsQueued() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.role != nil {
		n.role.disp.Wake()
	}
}

// wakeup acts on a hint pushed by another node: it only makes things happen sooner.
func (n *Node) wakeup(w store.Wakeup) {
	switch w.Topic {
	case store.TopicRuns:
		n.RunsQueued()
	case store.TopicConfig:
		n.JobsChanged()
	case store.TopicLease:
		n.keeper.Wake()
	case store.TopicAssigned:
		for _, id := range strings.Split(w.Payload, ",") {
			if id == n.cfg.NodeID {
				n.worker.Wake()
			}
		}
	}
}

// Mode returns the node's current mode.
func (n *Node) Mode() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.modeLocked()
}

func (n *Node) modeLocked() string {
	switch {
	case n.stopping:
		return ModeStopping
	case n.epoch != 0 && n.suspended:
		return ModeSuspended
	case n.epoch != 0:
		return ModePrimary
	case n.cfg.Worker:
		return ModeWorker
	case n.held:
		return ModeHeld
	}
	return ModeStandby
}

// eligible reports whether this node may take the primary role now.
func (n *Node) eligible() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.cfg.Worker && !n.held && !n.stopping
}
