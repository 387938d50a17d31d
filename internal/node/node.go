package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/clock"
	"github.com/tandemhq/tandem/internal/cluster"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/console"
	"github.com/tandemhq/tandem/internal/deliver"
	"github.com/tandemhq/tandem/internal/lease"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/sitesync"
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
	ModeDraining  = cluster.ModeDraining
	ModeStopped   = cluster.ModeStopped
	ModeLost      = cluster.ModeLost
)

// Node is one tandem server.
type Node struct {
	cfg     config.Config
	holder  string // this process as a lease holder
	store   store.Store
	log     *slog.Logger
	clock   *clock.Clock // wall clock corrected to the repository's
	started time.Time    // on the corrected clock: shown to operators
	upSince time.Time    // on this host's monotonic clock: for how long it has been up

	keeper   *lease.Keeper
	members  *cluster.Membership
	worker   *worker.Worker
	deliver  *deliver.Deliverer // set in Start, once the advertised address is known
	outputs  *output.Service
	http     *http.Server
	ln       net.Listener
	peers    *peer.Client // node-to-node calls: hints, forwarded operator actions, output transfers
	metrics  *metrics.Metrics
	sync     *sitesync.Service // the DR-site sync: the sender runs while primary
	authn    *auth.Authenticator
	console  *console.Console
	sealer   *auth.Sealer // nil: this node has not the cluster's secret key
	certs    *certs       // the API's certificate, with tls_cert
	redirect *http.Server // with redirect_http: plain HTTP answered with a redirect to HTTPS
	// bootstrapPath is where this start wrote the bootstrap admin token ("" if it did not).
	bootstrapPath string

	mu        sync.Mutex
	epoch     int64      // while primary
	suspended bool       // the primary role's stored suspension, as this primary read or set it
	held      bool       // this node's stored standby hold
	weight    float64    // load-balancing weight, as stored or configured
	weightMu  sync.Mutex // held across a change of weight (NodeWeight)
	stopping  bool
	hinting   atomic.Bool     // a round of copy hints to the other nodes is being sent
	role      *role           // services running while primary and not suspended
	reaper    func()          // stops the reaper of lost nodes, running while primary
	workHints map[string]bool // nodes a work hint is on its way to: true, another is due
	slots     *slots          // scheduler slots, when the cluster has more than one
	term      lease.Term      // the primary lease's current term (zero when not primary)
	drained   <-chan struct{} // closed when the last term's services have ended
	// cancel ends the services a stopping node gives up first (the lease, firing,
	// taking work); endLife ends what runs until the node has drained (heartbeats,
	// the worker's watch over its running attempts).
	cancel   context.CancelFunc
	endLife  context.CancelFunc
	wg       sync.WaitGroup
	lifeWG   sync.WaitGroup
	stopped  bool
	stopReq  chan struct{}
	stopOnce sync.Once
	restart  bool
	release  []func() // liveness lock, data directory lock
}

// New prepares a node over an open repository; Start runs it.
func New(cfg config.Config, st store.Store, log *slog.Logger) *Node {
	n := &Node{cfg: cfg, store: st, log: log.With("node", cfg.NodeID), holder: Holder(cfg.NodeID), clock: clock.New(cfg.ClockSkew),
		stopReq: make(chan struct{}), workHints: map[string]bool{}, peers: peer.New(), drained: closedChan()}
	n.metrics = metrics.New(prometheus.NewRegistry(), metrics.Options{Version: cmp.Or(cfg.Version, "dev"), Node: cfg.NodeID,
		JobLabels: cfg.Metrics.JobLabels, Cluster: n.clusterGauges})
	n.worker = worker.New(worker.Params{Store: st, Log: n.log.With("component", "worker"), Node: cfg.NodeID,
		DataDir: cfg.DataDir, Capacity: cfg.Capacity, OutputLimit: cfg.OutputLimit, OutputMaxBytes: cfg.OutputMaxBytes,
		Guard: cfg.CommandGuard, RunAs: cfg.RunAs, RunAsAllowed: cfg.RunAsAllowed, Secret: n.secret, OnFinish: n.runEnded, OnOutputs: n.copiesNeeded, Now: n.clock.Now, Holder: n.holder,
		OutputHashed: func(ref store.OutputRef, sum string) { n.outputs.Remember(ref, sum) },
		Ended:        func(job string, st store.RunState, took time.Duration) { n.metrics.RunEnded(job, string(st), took) }})
	lv, _ := st.(store.Liveness)
	n.members = cluster.New(cluster.Params{Store: st, Log: n.log.With("component", "cluster"), Self: cfg.NodeID,
		Interval: cfg.Heartbeat.Interval, MaxMissed: cfg.Heartbeat.MaxMissed, Now: n.clock.Now,
		Describe: n.describe, Event: n.clusterEvent, Requeued: n.RunsQueued, Liveness: lv, DeadCheck: cfg.Lease.Renew,
		OutputCopies: cfg.OutputCopies, CopiesNeeded: n.copiesNeeded})
	n.outputs = output.New(output.Params{Store: st, Log: n.log.With("component", "outputs"), Node: cfg.NodeID,
		DataDir: cfg.DataDir, Peer: n.peers, Live: n.members.Live, Copies: cfg.OutputCopies,
		Retention: cfg.OutputRetention, Now: n.clock.Now})
	n.sync = sitesync.New(sitesync.Params{Store: st, Config: cfg.SiteSync, Log: n.log.With("component", "sitesync"), Node: cfg.NodeID,
		Advertise: func() string { return n.cfg.Advertise }, Now: n.clock.Now, Lag: n.metrics.SyncLag,
		Sealer: func() *auth.Sealer { return n.sealer }, SecretSeen: cfg.SecretSeen})
	n.keeper = lease.New(lease.Params{Store: st, Liveness: lv, Log: n.log.With("component", "lease"), Holder: n.holder,
		Node: cfg.NodeID, Renew: cfg.Lease.Renew, TTL: cfg.Lease.TTL, Margin: cfg.Lease.Margin,
		Eligible: n.eligible, Rank: func(ctx context.Context) int { return n.members.Rank(ctx, n.cfg.Priority) }, Successor: n.bestStandby, Event: n.primaryChanged, Resigned: n.resigned, Elected: n.elected, Deposed: n.deposed,
		Took: n.metrics.Takeover})
	return n
}

// SiteSync is the node's part of the DR-site sync (for the API).
func (n *Node) SiteSync() *sitesync.Service { return n.sync }

// Holder names this process of a node as a lease holder: the node id and an
// incarnation, so a restarted process never inherits its predecessor's epoch.
func Holder(nodeID string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return nodeID + "#" + hex.EncodeToString(b[:])
}

// HolderNode returns the node id of a lease holder.
func HolderNode(holder string) string { return cluster.HolderNode(holder) }

// Addr is the address the API listens on (after Start).
func (n *Node) Addr() string {
	if n.ln == nil {
		return n.cfg.Listen
	}
	return n.ln.Addr().String()
}

// recordFailedStart records that this process, which claimed the node id and recorded
// its node.joined, will not serve: the node shows stopped with its node.stopped (naming
// why), as after a graceful stop, not live until its silence has it declared lost. It
// waits at most the heartbeat silence: past that the node is declared lost anyway, and
// the start's error is not held up by a repository that does not answer.
func (n *Node) recordFailedStart(ctx context.Context, why error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.members.Silence())
	defer cancel()
	ev := n.newEvent("node.stopped", fmt.Sprintf("node %s stopped: it could not start: %v", n.cfg.NodeID, why),
		map[string]any{"node": n.cfg.NodeID, "error": why.Error()})
	if err := n.members.Heartbeat(ctx, ModeStopped, ev); err != nil {
		n.log.Warn("cannot record that this node did not start", "err", err)
	}
}

// Start claims the data directory and the node id, opens the listener and starts every
// service. It returns once the node serves. A data directory or node id in use by
// another live process is an error (ErrNodeIDInUse for the id). Safe to call twice.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	again := n.cancel != nil || n.stopped
	n.mu.Unlock()
	if again {
		return nil
	}
	claimed := false
	defer func() {
		if err != nil {
			if claimed {
				n.recordFailedStart(ctx, err)
			}
			n.releaseLocks()
		}
	}()
	unlock, err := lockDataDir(n.cfg.DataDir)
	if err != nil {
		return err
	}
	n.release = append(n.release, unlock)
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.Listen, err)
	}
	n.ln = ln
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	if n.cfg.Advertise == n.cfg.Listen {
		n.cfg.Advertise = ln.Addr().String() // a :0 port is known only now
	}
	n.syncClock(ctx)
	n.started, n.upSince = n.clock.Now(), time.Now()
	if lv, ok := n.store.(store.Liveness); ok {
		release, err := lv.LivenessHold(ctx, n.holder)
		if err != nil {
			n.log.Warn("no liveness lock: standbys will wait for the lease to expire if this process dies", "err", err)
		} else {
			n.release = append(n.release, release)
		}
	}
	if err := n.loadHold(ctx); err != nil {
		return err
	}
	if err := n.applyBalanceConfig(ctx); err != nil {
		return fmt.Errorf("load balancing settings: %w", err)
	}
	slotCount, err := n.resolveSlots(ctx)
	if err != nil {
		return err
	}
	if err := n.claim(ctx); err != nil {
		return err
	}
	claimed = true
	if me, found, err := n.findNode(ctx); err == nil && found {
		n.worker.Claimed(me.HeartbeatAt) // the claim's time, by the repository's clock
	}
	// Whatever a previous process of this data directory left running dies before this
	// one takes work: its runs were or will be given to another attempt.
	if err := n.worker.KillLeftovers(); err != nil {
		n.log.Warn("cannot stop processes left by this node's previous process", "err", err)
	}
	if err := n.startAuth(ctx); err != nil {
		return err
	}
	n.deliver = n.newDeliverer()
	mux := http.NewServeMux()
	api.NewServer(n.store, n, n.log.With("component", "api")).Register(mux)
	if err := n.startConsole(mux); err != nil {
		return err
	}
	tlsConf, err := n.startTLS()
	if err != nil {
		return err
	}
	// The HTTP server's own complaints (TLS handshakes, bad requests) go through the
	// node's logger, redacted as every line is.
	n.http = &http.Server{Handler: api.Protect(mux), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(n.log.With("component", "http").Handler(), slog.LevelWarn)}
	n.http.RegisterOnShutdown(n.console.Close) // its live streams end, or Shutdown would wait for them
	serveLn := ln
	if tlsConf != nil {
		serveLn = tls.NewListener(ln, tlsConf)
	}
	if err := n.startRedirect(); err != nil {
		return err
	}
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancel(life)
	n.mu.Lock()
	n.cancel, n.endLife = cancel, endLife
	n.mu.Unlock()
	n.log.Info("node starting", "listen", ln.Addr().String(), "db", n.cfg.RedactedDB(), "capacity", n.cfg.Capacity,
		"priority", n.cfg.Priority, "mode", n.Mode())
	n.goFn(func() {
		if err := n.http.Serve(serveLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	})
	n.lifeWG.Add(3)
	go func() { defer n.lifeWG.Done(); _ = n.worker.Run(life) }()
	// Until drained: the runs that end while this node drains have their files here.
	go func() { defer n.lifeWG.Done(); _ = n.deliver.Run(life) }()
	go func() { defer n.lifeWG.Done(); n.heartbeats(life) }()
	n.startSlots(ctx, slotCount) // before the primary's keeper: its role must know whether to fire
	n.goFn(func() { _ = n.keeper.Run(ctx) })
	n.goFn(func() { _ = n.outputs.Run(ctx) })
	if n.certs != nil {
		n.goFn(func() { n.watchTLS(ctx, CertCheckInterval) })
	}
	if n.cfg.Failback {
		n.goFn(func() { n.failback(ctx) })
	}
	if nt, ok := n.store.(store.Notifier); ok {
		n.goFn(func() { _ = nt.Listen(ctx, n.wakeup) })
	}
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

// Stop shuts the node down gracefully. The node drains: it shows itself `draining` and
// takes no new runs, stops firing and dispatching, resigns the lease (to the best
// standby) so a standby takes over at once, and hands back the runs it was assigned but
// had not started. It goes on heartbeating, so no primary declares it lost, while its
// running runs finish within the shutdown grace period (then it cancels them and records
// that). Then it records that it stopped and stops serving. Safe to call twice, and
// before Start; ctx bounds the whole shutdown.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped || n.cancel == nil {
		n.stopped = true
		n.mu.Unlock()
		return nil
	}
	n.stopped, n.stopping = true, true
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("draining: resigning the lease, taking no new runs, waiting up to %s for %d running runs",
		n.cfg.ShutdownGrace, n.worker.Running()))
	n.worker.StopTaking()
	// Shown as draining first, so the primary gives this node no more work; the
	// repository refuses assignments to it from here on. The heartbeat that records the
	// drain records its node.stopping.
	running := n.worker.Running()
	if err := n.members.Heartbeat(ctx, "", n.newEvent("node.stopping", fmt.Sprintf("node %s draining: %d runs running", n.cfg.NodeID, running),
		map[string]any{"node": n.cfg.NodeID, "running": running})); err != nil {
		n.log.Warn("cannot record that this node is draining", "err", err)
	}
	n.cancel() // the lease keeper resigns, the scheduler and dispatcher stop
	n.releaseAssigned(ctx)
	grace, cancel := context.WithTimeout(ctx, n.cfg.ShutdownGrace)
	defer cancel()
	werr := n.worker.Shutdown(grace)
	n.endLife() // drained: heartbeats end, and the stop is recorded below
	n.lifeWG.Wait()
	herr := n.http.Shutdown(ctx)
	if n.redirect != nil {
		herr = errors.Join(herr, n.redirect.Shutdown(ctx))
	}
	n.console.Close()
	n.wg.Wait()
	// The stop and its node.stopped are one write: a process whose id another claimed
	// meanwhile records neither.
	if err := n.members.Heartbeat(context.WithoutCancel(ctx), ModeStopped,
		n.newEvent("node.stopped", fmt.Sprintf("node %s stopped", n.cfg.NodeID), map[string]any{"node": n.cfg.NodeID})); err != nil {
		n.log.Warn("cannot record that this node stopped", "err", err)
	}
	n.releaseLocks()
	n.log.Info("node stopped")
	return errors.Join(werr, herr)
}

// releaseLocks frees the liveness lock and the data directory.
func (n *Node) releaseLocks() {
	for _, r := range slices.Backward(n.release) {
		r()
	}
	n.release = nil
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
			err := n.heartbeat(ctx)
			switch {
			case errors.Is(err, store.ErrClaimed):
				// Another process took this node id over (this one was found dead, or
				// frozen past its lease): it must not run this node's work any more.
				n.worker.StopTaking()
				n.log.Error("another process claimed this node id: stopping", "err", err)
				n.requestStop(false)
			case err != nil && ctx.Err() == nil:
				n.log.Warn("heartbeat failed", "err", err)
			}
			n.syncClock(ctx)
		}
	}
}

func (n *Node) heartbeat(ctx context.Context) error { return n.members.Heartbeat(ctx, "") }

// describe is this node as its heartbeats report it.
func (n *Node) describe() store.Node {
	n.mu.Lock()
	weight := n.weight
	n.mu.Unlock()
	return store.Node{ID: n.cfg.NodeID, Holder: n.holder, Address: n.cfg.Advertise, Mode: n.Mode(), Priority: n.cfg.Priority, Weight: weight,
		Capacity: n.cfg.Capacity, Running: n.worker.Running(), Tags: n.cfg.Tags, StartedAt: n.started, Version: cmp.Or(n.cfg.Version, "dev")}
}

// SweepOutputs deletes the outputs past retention once, and the files the repository
// no longer lists.
func (n *Node) SweepOutputs(ctx context.Context) error { return n.outputs.Sweep(ctx) }

// Outputs implements api.Backend.
func (n *Node) Outputs() *output.Service { return n.outputs }

// OutputsHint implements api.Backend: another node recorded outputs that need copies.
func (n *Node) OutputsHint() { n.outputs.Hint() }

// Peer is the client this node calls other nodes with (api.Server uses it).
func (n *Node) Peer() *peer.Client { return n.peers }

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
	if n.role != nil && n.role.sched != nil {
		n.role.sched.Wake()
	}
	if n.slots != nil {
		n.slots.wake()
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
	case store.TopicDeliveries:
		n.deliveriesDue()
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
		return ModeDraining
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

// closedChan is a channel that is already closed.
func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
