// Package cluster owns membership: every node records a heartbeat with its mode and load
// in the repository; every node reads the others' to know who is live, who stands by and
// in which order they take over, and how much work each can take; the primary declares
// silent nodes lost (fenced by its epoch), queues their unfinished runs again, and takes
// back what was left assigned to nodes that stopped.
//
// Liveness is judged by the repository's clock: a heartbeat is stamped by the repository,
// and "silent for heartbeat.max_missed intervals" is measured against the repository's
// time, so no node's clock decides that another is gone.
package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/dispatch"
	"github.com/tandemhq/tandem/internal/store"
)

// Node modes as shown in the status table and recorded with each heartbeat.
const (
	ModePrimary   = "primary"   // holds the lease, fires and dispatches
	ModeSuspended = "suspended" // holds the lease, fires and dispatches nothing
	ModeStandby   = "standby"   // takes over when the primary goes
	ModeHeld      = "held"      // a standby that will not take over
	ModeWorker    = "worker"    // never takes the primary role
	ModeDraining  = "draining"  // stopping: given no work, heartbeating until its runs end
	ModeStopped   = "stopped"   // shut down gracefully
	ModeLost      = "lost"      // silent; declared lost by the primary
)

// Store is what a Membership needs of the repository: the nodes, the primary's lease
// (to name the primary in the status), and the load of each node.
type Store interface {
	store.Members
	LeaseGet(ctx context.Context, name string) (store.Lease, error)
	RunCounts(ctx context.Context) ([]store.RunCount, error)
	RunLoad(ctx context.Context) ([]store.RunCount, error)
	RunRelease(ctx context.Context, p store.RunReleaseParams) ([]int64, error)
}

// Params configures a Membership.
type Params struct {
	Store     Store
	Log       *slog.Logger
	Self      string        // this node's id
	Interval  time.Duration // between heartbeats
	MaxMissed int           // heartbeats missed before a node is lost
	Now       func() time.Time
	// Describe returns this node as its next heartbeat reports it: address, mode,
	// priority, capacity, running, tags, start time.
	Describe func() store.Node
	// Event appends a membership event of what the reaper observed, on its own (a lost
	// node rejoined: its heartbeat changed the row). node.lost and the outputs' events
	// (output.underreplicated, output.lost) are written by NodeLose.
	Event func(typ, msg string, data map[string]any)
	// Requeued is called when runs were queued again, so the dispatcher looks at once.
	Requeued func()
	// Liveness, if set, tells at once that a node's process died (its liveness lock is
	// free): the reaper declares such a node lost without waiting for its silence.
	Liveness store.Liveness
	// DeadCheck is how often the reaper looks for dead processes; default Interval/4.
	DeadCheck time.Duration
	// OutputCopies is output_copies, against which a lost node's outputs are judged
	// under-replicated (0: 2).
	OutputCopies int
	// CopiesNeeded, if set, is called when a lost node's outputs need copies again, so
	// the copiers look at once.
	CopiesNeeded func()
}

// Membership is one node's view of the cluster's nodes.
type Membership struct {
	p Params

	mu    sync.Mutex
	addrs map[string]string // node id → advertised address, as Targets last read them
}

// New returns a membership; it starts nothing.
func New(p Params) *Membership {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Event == nil {
		p.Event = func(string, string, map[string]any) {}
	}
	if p.Requeued == nil {
		p.Requeued = func() {}
	}
	if p.CopiesNeeded == nil {
		p.CopiesNeeded = func() {}
	}
	if p.DeadCheck <= 0 {
		p.DeadCheck = max(p.Interval/4, time.Millisecond)
	}
	return &Membership{p: p, addrs: map[string]string{}}
}

// Silence is how long a node may go without a heartbeat before it is lost.
func (m *Membership) Silence() time.Duration {
	return time.Duration(m.p.MaxMissed) * m.p.Interval
}

// Heartbeat records this node's liveness and load; mode, if not empty, overrides the
// described mode (a node recording that it stopped). The events are recorded in the
// heartbeat's transaction (the drain's node.stopping, the stop's node.stopped), and
// not at all when it is refused (ErrClaimed).
func (m *Membership) Heartbeat(ctx context.Context, mode string, events ...store.EventAppendParams) error {
	self := m.p.Describe()
	self.ID = m.p.Self
	if mode != "" {
		self.Mode = mode
	}
	return m.p.Store.NodeHeartbeat(ctx, store.NodeHeartbeatParams{Node: self, Events: events})
}

// Live lists the nodes heard from within the silence, by the repository's clock, that
// neither stopped nor were declared lost.
func (m *Membership) Live(ctx context.Context) ([]store.Node, error) {
	nodes, err := m.p.Store.NodeList(ctx)
	if err != nil {
		return nil, err
	}
	l, err := m.p.Store.LeaseGet(ctx, store.PrimaryLease)
	now := l.Now
	if err != nil || now.IsZero() {
		now = m.p.Now()
	}
	var out []store.Node
	for _, nd := range nodes {
		if nd.Mode != ModeLost && nd.Mode != ModeStopped && !nd.HeartbeatAt.Before(now.Add(-m.Silence())) {
			out = append(out, nd)
		}
	}
	return out, nil
}

// SortNodes orders nodes for takeover: priority, then id.
func SortNodes(nodes []store.Node) {
	slices.SortFunc(nodes, func(a, b store.Node) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.ID, b.ID))
	})
}

// Standbys lists the other live nodes that would take over, best first.
func (m *Membership) Standbys(ctx context.Context) []store.Node {
	nodes, err := m.Live(ctx)
	if err != nil {
		return nil
	}
	var out []store.Node
	for _, nd := range nodes {
		if nd.Mode == ModeStandby && nd.ID != m.p.Self {
			out = append(out, nd)
		}
	}
	SortNodes(out)
	return out
}

// Switchable lists the other live nodes a primary may hand the role to by name: the
// standbys, and a node whose row still shows the primary's mode because it stepped down
// since its last heartbeat (switching straight back after a switch).
func (m *Membership) Switchable(ctx context.Context) []store.Node {
	nodes, err := m.Live(ctx)
	if err != nil {
		return nil
	}
	var out []store.Node
	for _, nd := range nodes {
		former := nd.Mode == ModePrimary || nd.Mode == ModeSuspended
		if nd.ID != m.p.Self && (nd.Mode == ModeStandby || former) {
			out = append(out, nd)
		}
	}
	SortNodes(out)
	return out
}

// Rank is how many live standbys come before this node (of the given priority) in
// takeover order.
func (m *Membership) Rank(ctx context.Context, priority int) int {
	r := 0
	for _, nd := range m.Standbys(ctx) {
		if nd.Priority < priority || (nd.Priority == priority && nd.ID < m.p.Self) {
			r++
		}
	}
	return r
}

// Targets lists the live nodes that take runs, with their free capacity: capacity less
// the runs assigned to or running on them.
func (m *Membership) Targets(ctx context.Context) ([]dispatch.Target, error) {
	nodes, err := m.Live(ctx)
	if err != nil {
		return nil, err
	}
	load, err := m.p.Store.RunLoad(ctx) // not RunCounts: the length of the queue must not slow each pass
	if err != nil {
		return nil, err
	}
	busy := map[string]int{}
	for _, c := range load {
		busy[c.Node] += c.Count
	}
	m.mu.Lock()
	for _, nd := range nodes {
		m.addrs[nd.ID] = nd.Address
	}
	m.mu.Unlock()
	var out []dispatch.Target
	for _, nd := range nodes {
		if nd.Mode == ModeDraining || nd.Capacity == 0 {
			continue
		}
		out = append(out, dispatch.Target{ID: nd.ID, Free: max(nd.Capacity-busy[nd.ID], 0), Running: busy[nd.ID], Weight: nd.Weight, Tags: nd.Tags})
	}
	return out, nil
}

// AddressOf is the advertised address of a node that Targets listed last ("" if none).
func (m *Membership) AddressOf(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs[id]
}

// Reap runs on the primary under epoch: every heartbeat interval it declares silent
// nodes lost, queues their unfinished runs again, takes back runs left assigned to nodes
// that stopped, and notes lost nodes that came back; every DeadCheck it declares lost the
// nodes whose process is dead (their liveness lock is free), at once. It returns
// store.ErrFenced when the epoch was superseded, nil when ctx ends.
func (m *Membership) Reap(ctx context.Context, epoch int64) error {
	t := time.NewTicker(m.p.DeadCheck)
	defer t.Stop()
	lost := map[string]bool{}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var err error
		if time.Since(last) >= m.p.Interval {
			last = time.Now()
			err = m.ReapOnce(ctx, epoch, lost)
		} else {
			err = m.ReapDead(ctx, epoch, lost)
		}
		if errors.Is(err, store.ErrFenced) {
			return err
		}
	}
}

// ReapDead declares lost, at once, the nodes whose process is dead by their liveness
// lock; lost carries what earlier passes saw lost.
func (m *Membership) ReapDead(ctx context.Context, epoch int64, lost map[string]bool) error {
	if m.p.Liveness == nil {
		return nil
	}
	nodes, err := m.p.Store.NodeList(ctx)
	if err != nil {
		return err
	}
	for _, nd := range nodes {
		if nd.ID == m.p.Self || nd.Mode == ModeStopped || nd.Mode == ModeLost || nd.Holder == "" {
			continue
		}
		if dead, err := m.p.Liveness.LivenessDead(ctx, nd.Holder); err != nil || !dead {
			continue
		}
		if err := m.lose(ctx, epoch, nd, lost, true); err != nil {
			return err
		}
	}
	return nil
}

// ReapOnce is one pass of Reap; lost carries what earlier passes saw lost.
func (m *Membership) ReapOnce(ctx context.Context, epoch int64, lost map[string]bool) error {
	nodes, err := m.p.Store.NodeList(ctx)
	if err != nil {
		return err
	}
	if err := m.releaseStopped(ctx, epoch, nodes); err != nil {
		return err
	}
	for _, nd := range nodes {
		switch {
		case nd.ID == m.p.Self || nd.Mode == ModeStopped:
		case nd.Mode == ModeLost:
			lost[nd.ID] = true
		case lost[nd.ID]:
			delete(lost, nd.ID)
			m.p.Log.Info(fmt.Sprintf("node %s rejoined", nd.ID))
			m.p.Event("node.joined", fmt.Sprintf("node %s rejoined after being lost", nd.ID), map[string]any{"node": nd.ID})
		default:
			if err := m.lose(ctx, epoch, nd, lost, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// lose declares nd lost if it is silent or, with dead, at once (its process is gone).
// Only store.ErrFenced is returned: any other failure is tried again on the next pass.
func (m *Membership) lose(ctx context.Context, epoch int64, nd store.Node, lost map[string]bool, dead bool) error {
	p := store.NodeLoseParams{Epoch: epoch, Node: nd.ID, Silence: m.Silence(), OutputCopies: m.p.OutputCopies, By: m.p.Self}
	why := fmt.Sprintf("%d heartbeats missed", m.p.MaxMissed)
	if dead {
		p.Dead, why = nd.Holder, fmt.Sprintf("its process %s died (its liveness lock is free)", nd.Holder)
	}
	p.Why = why
	p.Events = func(res store.NodeLoseResult) []store.EventAppendParams { return m.outputsEvents(nd.ID, res) }
	res, err := m.p.Store.NodeLose(ctx, p)
	if errors.Is(err, store.ErrFenced) {
		return err
	}
	if err != nil || !res.Lost {
		return nil
	}
	lost[nd.ID] = true
	msg := fmt.Sprintf("node %s lost: %s; re-queued %d runs", nd.ID, why, len(res.Requeued))
	if len(res.Failed) > 0 {
		msg += fmt.Sprintf(", failed %d with no attempt left", len(res.Failed))
	}
	m.p.Log.Warn(msg) // NodeLose recorded the node.lost event in its transaction
	m.p.Requeued()
	m.outputsLost(nd.ID, res)
	return nil
}

// outputsEventMax bounds the outputs an output event names (its count says all).
const outputsEventMax = 100

// outputsEvents are the events of what a node's loss did to the outputs it held,
// recorded by NodeLose after its node.lost: output.underreplicated (copies are made
// again from a live holder) and output.lost (no live holder left; a holder that comes
// back with its copy makes it available again).
func (m *Membership) outputsEvents(node string, res store.NodeLoseResult) []store.EventAppendParams {
	var evs []store.EventAppendParams
	for _, e := range outputsLosses(res) {
		evs = append(evs, store.EventAppendParams{Type: e.typ, Node: m.p.Self, Now: m.p.Now(), Message: e.message(node),
			Data: map[string]any{"node": node, "count": len(e.refs), "outputs": e.names()}})
	}
	return evs
}

// outputsLoss is one kind of what a node's loss did to its outputs.
type outputsLoss struct {
	typ, what string
	refs      []store.OutputRef
}

func (e outputsLoss) message(node string) string {
	return fmt.Sprintf("%d outputs held by node %s %s", len(e.refs), node, e.what)
}

// names are the outputs an event names, at most outputsEventMax (its count says all).
func (e outputsLoss) names() []string {
	names := make([]string, 0, min(len(e.refs), outputsEventMax))
	for _, r := range e.refs[:min(len(e.refs), outputsEventMax)] {
		names = append(names, r.String())
	}
	return names
}

func outputsLosses(res store.NodeLoseResult) []outputsLoss {
	var out []outputsLoss
	for _, e := range []outputsLoss{
		{"output.underreplicated", "under-replicated, copied again from a live holder", res.Underreplicated},
		{"output.lost", "lost: no live holder left", res.OutputsLost},
	} {
		if len(e.refs) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// outputsLost logs what a node's loss did to its outputs (NodeLose recorded the
// events) and has the missing copies made.
func (m *Membership) outputsLost(node string, res store.NodeLoseResult) {
	for _, e := range outputsLosses(res) {
		m.p.Log.Warn(e.message(node), "outputs", e.names())
	}
	if len(res.Underreplicated)+len(res.OutputsLost) > 0 {
		m.p.CopiesNeeded()
	}
}

// releaseStopped queues again the runs still assigned to nodes that stopped (one that
// could not release them itself as it stopped).
func (m *Membership) releaseStopped(ctx context.Context, epoch int64, nodes []store.Node) error {
	stopped := map[string]bool{}
	for _, nd := range nodes {
		if nd.Mode == ModeStopped {
			stopped[nd.ID] = true
		}
	}
	if len(stopped) == 0 {
		return nil
	}
	counts, err := m.p.Store.RunCounts(ctx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		if c.State != store.RunAssigned || !stopped[c.Node] {
			continue
		}
		ids, err := m.p.Store.RunRelease(ctx, store.RunReleaseParams{Epoch: epoch, Node: c.Node, Now: m.p.Now(),
			Reason: fmt.Sprintf("node %s stopped before starting the run; queued again", c.Node)})
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			m.p.Log.Info(fmt.Sprintf("node %s stopped: re-queued %d runs assigned to it", c.Node, len(ids)), "runs", ids)
			m.p.Requeued()
		}
	}
	return nil
}
