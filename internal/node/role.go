package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/dispatch"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
)

// role is the set of services a node runs while it is primary and not suspended, under
// one epoch: the scheduler, the dispatcher and the reaper of lost nodes.
type role struct {
	epoch  int64
	sched  *scheduler.Scheduler
	disp   *dispatch.Dispatcher
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// elected is called by the lease keeper when this node becomes primary.
func (n *Node) elected(epoch int64, prev store.Lease, how string) {
	n.log.Info(fmt.Sprintf("becoming primary (epoch %d): %s", epoch, how))
	n.mu.Lock()
	n.epoch = epoch
	suspended := n.suspended
	n.mu.Unlock()
	if !suspended {
		n.startRole(epoch)
	}
	n.event("primary.changed", fmt.Sprintf("%s became primary (epoch %d): %s", n.cfg.NodeID, epoch, how),
		map[string]any{"epoch": epoch, "previous": HolderNode(prev.Holder)})
	n.goFn(func() { _ = n.heartbeat(context.Background()) }) // show the new mode at once
}

// deposed is called by the lease keeper when this node stops being primary.
func (n *Node) deposed(epoch int64, reason string) {
	n.mu.Lock()
	n.epoch = 0
	n.suspended = false // suspension belongs to a primary's term
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("stepping down (epoch %d): %s", epoch, reason))
	n.stopRole()
	n.goFn(func() {
		n.event("primary.stepped_down", fmt.Sprintf("%s stepped down (epoch %d): %s", n.cfg.NodeID, epoch, reason),
			map[string]any{"epoch": epoch, "reason": reason})
	})
	n.goFn(func() { _ = n.heartbeat(context.Background()) }) // show the new mode at once
}

// startRole starts the primary's services under epoch.
func (n *Node) startRole(epoch int64) {
	ctx, cancel := context.WithCancel(context.Background())
	if _, ok := n.clock.Offset(); !ok {
		n.syncClock(ctx) // fire nothing by an uncorrected clock
	}
	r := &role{epoch: epoch, cancel: cancel}
	r.sched = scheduler.New(scheduler.Params{Store: n.store, Log: n.log.With("component", "scheduler"), Epoch: epoch,
		Now: n.clock.Now, Observe: func([]store.FireResult, time.Time) { r.disp.Wake() }})
	r.disp = dispatch.New(dispatch.Params{Store: n.store, Log: n.log.With("component", "dispatcher"), Epoch: epoch,
		Now: n.clock.Now, Targets: n.targets, Assigned: n.assigned})
	run := func(name string, fn func(context.Context) error) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := fn(ctx); err != nil {
				n.log.Warn(name+" stopped", "err", err)
				if errors.Is(err, store.ErrFenced) {
					n.keeper.StepDown()
				}
			}
		}()
	}
	run("scheduler", r.sched.Run)
	run("dispatcher", r.disp.Run)
	run("reaper", func(ctx context.Context) error { return n.reap(ctx, epoch) })
	n.mu.Lock()
	n.role = r
	n.mu.Unlock()
}

// stopRole stops the primary's services and waits for them.
func (n *Node) stopRole() {
	n.mu.Lock()
	r := n.role
	n.role = nil
	n.mu.Unlock()
	if r != nil {
		r.cancel()
		r.wg.Wait()
	}
}

func (n *Node) event(typ, msg string, data map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.store.EventAppend(ctx, store.EventAppendParams{Type: typ, Node: n.cfg.NodeID, Message: msg, Data: data, Now: n.clock.Now()}); err != nil {
		n.log.Warn("cannot record event", "type", typ, "err", err)
	}
}

// silence is how long a node may go without a heartbeat before it is lost.
func (n *Node) silence() time.Duration {
	return time.Duration(n.cfg.Heartbeat.MaxMissed) * n.cfg.Heartbeat.Interval
}

// live lists the nodes heard from within the silence, by the repository's clock.
func (n *Node) live(ctx context.Context) ([]store.Node, error) {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return nil, err
	}
	l, err := n.store.LeaseGet(ctx, store.PrimaryLease)
	now := l.Now
	if err != nil {
		now = n.clock.Now()
	}
	var out []store.Node
	for _, nd := range nodes {
		if nd.Mode != ModeLost && nd.Mode != ModeStopped && !nd.HeartbeatAt.Before(now.Add(-n.silence())) {
			out = append(out, nd)
		}
	}
	return out, nil
}

// targets lists the live nodes that take runs, with their free capacity.
func (n *Node) targets(ctx context.Context) ([]dispatch.Target, error) {
	nodes, err := n.live(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := n.store.RunCounts(ctx)
	if err != nil {
		return nil, err
	}
	busy := map[string]int{}
	for _, c := range counts {
		if c.State == store.RunAssigned || c.State == store.RunRunning {
			busy[c.Node] += c.Count
		}
	}
	var out []dispatch.Target
	for _, nd := range nodes {
		if nd.Mode == ModeStopping || nd.Capacity == 0 {
			continue
		}
		out = append(out, dispatch.Target{ID: nd.ID, Free: max(nd.Capacity-busy[nd.ID], 0), Tags: nd.Tags})
	}
	return out, nil
}

// assigned wakes the workers that were given runs: this node's at once; others learn of
// it from the repository (a pushed wake-up on PostgreSQL, their polling everywhere).
func (n *Node) assigned(nodes []string) {
	for _, id := range nodes {
		if id == n.cfg.NodeID {
			n.worker.Wake()
		}
	}
}

// reap declares silent nodes lost every heartbeat interval and re-queues their runs.
func (n *Node) reap(ctx context.Context, epoch int64) error {
	t := time.NewTicker(n.cfg.Heartbeat.Interval)
	defer t.Stop()
	lost := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		nodes, err := n.store.NodeList(ctx)
		if err != nil {
			continue
		}
		if err := n.releaseStopped(ctx, epoch, nodes); errors.Is(err, store.ErrFenced) {
			return err
		}
		for _, nd := range nodes {
			switch {
			case nd.ID == n.cfg.NodeID || nd.Mode == ModeStopped:
			case nd.Mode == ModeLost:
				lost[nd.ID] = true
			case lost[nd.ID]:
				delete(lost, nd.ID)
				n.log.Info(fmt.Sprintf("node %s rejoined", nd.ID))
				n.event("node.joined", fmt.Sprintf("node %s rejoined after being lost", nd.ID), map[string]any{"node": nd.ID})
			default:
				res, err := n.store.NodeLose(ctx, store.NodeLoseParams{Epoch: epoch, Node: nd.ID, Silence: n.silence(), Now: n.clock.Now()})
				if errors.Is(err, store.ErrFenced) {
					return err
				}
				if err != nil || !res.Lost {
					continue
				}
				lost[nd.ID] = true
				msg := fmt.Sprintf("node %s lost: %d heartbeats missed; re-queued %d runs", nd.ID, n.cfg.Heartbeat.MaxMissed, len(res.Requeued))
				if len(res.Failed) > 0 {
					msg += fmt.Sprintf(", failed %d with no attempt left", len(res.Failed))
				}
				n.log.Warn(msg)
				n.event("node.lost", msg, map[string]any{"node": nd.ID, "requeued": res.Requeued, "failed": res.Failed})
				n.RunsQueued()
			}
		}
	}
}

// releaseStopped queues again the runs still assigned to nodes that stopped (one that
// could not release them itself as it stopped, or was given one as it did).
func (n *Node) releaseStopped(ctx context.Context, epoch int64, nodes []store.Node) error {
	stopped := map[string]bool{}
	for _, nd := range nodes {
		if nd.Mode == ModeStopped {
			stopped[nd.ID] = true
		}
	}
	if len(stopped) == 0 {
		return nil
	}
	counts, err := n.store.RunCounts(ctx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		if c.State != store.RunAssigned || !stopped[c.Node] {
			continue
		}
		ids, err := n.store.RunRelease(ctx, store.RunReleaseParams{Epoch: epoch, Node: c.Node, Now: n.clock.Now(),
			Reason: fmt.Sprintf("node %s stopped before starting the run; queued again", c.Node)})
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			n.log.Info(fmt.Sprintf("node %s stopped: re-queued %d runs assigned to it", c.Node, len(ids)), "runs", ids)
			n.RunsQueued()
		}
	}
	return nil
}

// standbys lists the live nodes that would take over, best first (priority, then id).
func (n *Node) standbys(ctx context.Context) []store.Node {
	nodes, err := n.live(ctx)
	if err != nil {
		return nil
	}
	var out []store.Node
	for _, nd := range nodes {
		if nd.Mode == ModeStandby && nd.ID != n.cfg.NodeID {
			out = append(out, nd)
		}
	}
	slicesSortNodes(out)
	return out
}

// switchable lists the live nodes a primary may hand the role to by name: the standbys,
// and a node whose row still shows the primary's mode because it stepped down since its
// last heartbeat (switching straight back after a switch).
func (n *Node) switchable(ctx context.Context) []store.Node {
	nodes, err := n.live(ctx)
	if err != nil {
		return nil
	}
	var out []store.Node
	for _, nd := range nodes {
		former := nd.Mode == ModePrimary || nd.Mode == ModeSuspended
		if nd.ID != n.cfg.NodeID && (nd.Mode == ModeStandby || former) {
			out = append(out, nd)
		}
	}
	return out
}

// rank is how many live standbys come before this node in takeover order.
func (n *Node) rank(ctx context.Context) int {
	r := 0
	for _, nd := range n.standbys(ctx) {
		if nd.Priority < n.cfg.Priority || (nd.Priority == n.cfg.Priority && nd.ID < n.cfg.NodeID) {
			r++
		}
	}
	return r
}

// bestStandby is the node a stopping primary hands the lease to.
func (n *Node) bestStandby(ctx context.Context) string {
	if s := n.standbys(ctx); len(s) > 0 {
		return s[0].ID
	}
	return ""
}

// failback asks the primary to hand the role back to this node when this node has the
// better priority and has been up for the hold-down time.
func (n *Node) failback(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat.Interval)
	defer t.Stop()
	var asked time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.Mode() != ModeStandby || time.Since(n.started) < n.cfg.FailbackHold || time.Since(asked) < n.cfg.FailbackHold {
			continue
		}
		nodes, err := n.live(ctx)
		if err != nil {
			continue
		}
		for _, nd := range nodes {
			if nd.Mode == ModePrimary && nd.Priority > n.cfg.Priority {
				asked = time.Now()
				n.log.Info(fmt.Sprintf("failback: asking %s (priority %d) to hand the primary role back to this node (priority %d)", nd.ID, nd.Priority, n.cfg.Priority))
				if err := n.askSwitch(ctx, nd.Address, n.cfg.NodeID); err != nil {
					n.log.Warn("failback request failed", "primary", nd.ID, "err", err)
				}
			}
		}
	}
}

func removeOutputs(dataDir string, outs []store.Output, log *slog.Logger) error {
	var errs []error
	dirs := map[string]bool{}
	for _, o := range outs {
		dirs[filepath.Join(dataDir, "outputs", strconv.FormatInt(o.RunID, 10))] = true
	}
	for dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(outs) > 0 {
		log.Info("outputs past retention deleted", "files", len(outs), "runs", len(dirs))
	}
	return errors.Join(errs...)
}
