package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/dispatch"
	"github.com/tandemhq/tandem/internal/lease"
	"github.com/tandemhq/tandem/internal/notify"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
)

// role is the set of services a node runs while it is primary and not suspended, under
// one epoch: the scheduler and the dispatcher. The reaper of lost nodes runs for the
// whole term, suspended or not (see startReaper).
type role struct {
	epoch  int64
	sched  *scheduler.Scheduler
	disp   *dispatch.Dispatcher
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// elected is handed each new term by the lease keeper. It must not block the keeper:
// the term's start (waiting for the previous term's services to end, reading the role's
// stored suspension, starting the services, recording the event) runs on a goroutine of
// its own, under the term's context, so a term that ends meanwhile stops it.
func (n *Node) elected(t lease.Term) {
	epoch, how := t.Epoch, t.How
	n.metrics.Elected(epoch)
	n.mu.Lock()
	n.epoch, n.term = epoch, t
	drained := n.drained
	n.mu.Unlock()
	ctx := t.Context()
	n.goFn(func() {
		select {
		case <-drained: // the previous term's services have ended
		case <-ctx.Done():
			return
		}
		n.startReaper(t)
		hold, err := n.primarySuspension(ctx)
		if err != nil {
			return // the term ended first
		}
		n.mu.Lock()
		current := n.epoch == epoch
		n.suspended = hold != nil
		n.mu.Unlock()
		if !current {
			return
		}
		if hold != nil {
			how += suspendedHow(*hold)
		} else {
			n.startRole(t)
		}
		// Its primary.changed event was recorded with the lease (primaryChanged).
		n.log.Info(fmt.Sprintf("becoming primary (epoch %d): %s", epoch, how))
		_ = n.heartbeat(ctx) // show the new mode at once
	})
}

// primaryChanged is the primary.changed event of a new term, recorded by the lease
// keeper in the transaction that takes the lease, so no term begins unrecorded.
func (n *Node) primaryChanged(taken, before store.Lease, holds []store.Hold, how string, took time.Duration) store.EventAppendParams {
	reason := takeoverReason(how)
	var hold *store.Hold
	for _, h := range holds {
		if h.Target == store.HoldPrimary && h.Kind == store.HoldSuspend {
			hold = &h
		}
	}
	if hold != nil {
		how += suspendedHow(*hold)
	}
	return store.EventAppendParams{Type: "primary.changed", Node: n.cfg.NodeID,
		Message: fmt.Sprintf("%s became primary (epoch %d): %s", n.cfg.NodeID, taken.Epoch, how),
		Data: map[string]any{"epoch": taken.Epoch, "previous": HolderNode(before.Holder), "to": n.cfg.NodeID,
			"suspended": hold != nil, "reason": reason, "took_ms": took.Milliseconds()}}
}

func suspendedHow(h store.Hold) string {
	return fmt.Sprintf("; the primary role is suspended (by %s at %s): firing and dispatching nothing until resumed", h.By, h.At.Format(time.RFC3339))
}

// takeoverReason names how the role was taken, for primary.changed's data.reason,
// from the lease keeper's description.
func takeoverReason(how string) string {
	switch {
	case strings.Contains(how, "no primary before"):
		return "start"
	case strings.Contains(how, "died"):
		return "crash"
	case strings.Contains(how, "handed the lease over"):
		return "handover"
	case strings.Contains(how, "still held"):
		return "renewed"
	}
	return "takeover"
}

// deposed is told by the lease keeper that a term has ended. The term's context is
// already done, so the services under it are stopping by themselves; this only detaches
// them and, on a goroutine of its own (the keeper must not wait), waits for them to end
// before the next term may start its own.
func (n *Node) deposed(t lease.Term) {
	epoch, reason := t.Epoch, t.Reason()
	n.metrics.Deposed()
	n.mu.Lock()
	n.epoch, n.term = 0, lease.Term{}
	n.suspended = false // the suspension is stored; the next primary reads it
	r, reaper := n.role, n.reaper
	n.role, n.reaper = nil, nil
	drained := make(chan struct{})
	n.drained = drained
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("stepping down (epoch %d): %s", epoch, reason))
	n.goFn(func() {
		defer close(drained)
		if r != nil {
			r.cancel()
			r.wg.Wait()
		}
		if reaper != nil {
			reaper()
		}
	})
	if !t.EndRecorded() {
		// Ended without a write of this node's (a renewal failed or was fenced; the
		// lease is another's, or unreachable): there is no change to record it with, so
		// it is appended on its own. A resignation wrote it with the lease (resigned).
		n.goFn(func() { n.event(steppedDown(n.cfg.NodeID, epoch, reason, n.clock.Now())) })
	}
	n.goFn(func() { _ = n.heartbeat(context.Background()) }) // show the new mode at once
}

// steppedDown is the primary.stepped_down event of a term that ended for reason.
func steppedDown(node string, epoch int64, reason string, now time.Time) store.EventAppendParams {
	return store.EventAppendParams{Type: "primary.stepped_down", Node: node, Now: now,
		Message: fmt.Sprintf("%s stepped down (epoch %d): %s", node, epoch, reason),
		Data:    map[string]any{"epoch": epoch, "reason": reason}}
}

// resigned is the primary.stepped_down event the lease keeper records in the
// transaction that resigns the lease (a handover, a stop).
func (n *Node) resigned(t lease.Term, reason string) store.EventAppendParams {
	return steppedDown(n.cfg.NodeID, t.Epoch, reason, n.clock.Now())
}

// startRole starts the primary's services under the term t.
func (n *Node) startRole(t lease.Term) {
	epoch := t.Epoch
	ctx, cancel := context.WithCancel(t.Context())
	if _, ok := n.clock.Offset(); !ok {
		n.syncClock(ctx) // fire nothing by an uncorrected clock
	}
	r := &role{epoch: epoch, cancel: cancel}
	r.sched = scheduler.New(scheduler.Params{Store: n.store, Log: n.log.With("component", "scheduler"), Epoch: epoch,
		Now: n.clock.Now, Observe: func([]store.FireResult, time.Time) { r.disp.Wake() }, Fired: n.metrics.Fired})
	r.disp = dispatch.New(dispatch.Params{Store: n.store, Log: n.log.With("component", "dispatcher"), Epoch: epoch,
		Now: n.clock.Now, Targets: n.members.Targets, Assigned: n.assigned, Local: n.cfg.NodeID,
		Algorithm: (&algorithmCache{st: n.store}).get})
	run := func(name string, fn func(context.Context) error) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			n.serviceEnded(name, fn(ctx))
		}()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.epoch != epoch || n.suspended || n.role != nil {
		cancel() // deposed or suspended meanwhile, or already running
		return
	}
	if n.slots == nil {
		run("scheduler", r.sched.Run)
	} else {
		r.sched = nil // the scheduler slots fire; the primary dispatches
	}
	run("dispatcher", r.disp.Run)
	if a, ok := n.store.(store.Analyzer); ok {
		run("statistics", func(ctx context.Context) error { n.analyze(ctx, a); return nil })
	}
	n.role = r
}

// analyzeEvery is how often the primary refreshes stale planner statistics.
const analyzeEvery = 5 * time.Second

// analyze keeps the repository's planner statistics fresh while this node is primary.
func (n *Node) analyze(ctx context.Context, a store.Analyzer) {
	t := time.NewTicker(analyzeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		names, err := a.Analyze(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			n.log.Warn("cannot refresh the repository's statistics", "err", err)
		case len(names) > 0:
			n.log.Debug("refreshed the repository's statistics", "tables", names, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}

// startReaper starts the reaper of lost nodes and the notifier for the primary's whole
// term t: a suspended primary fires and dispatches nothing, but still declares silent
// nodes lost and queues their runs again (for whoever dispatches next).
func (n *Node) startReaper(t lease.Term) {
	epoch := t.Epoch
	n.stopReaper() // one reaper at a time
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	nt := notify.New(notify.Params{Store: n.store, Log: n.log.With("component", "notifier"), Node: n.cfg.NodeID, Epoch: epoch,
		Now: n.clock.Now, Sent: n.deliveriesDue})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); n.serviceEnded("reaper", n.members.Reap(ctx, epoch)) }()
		// The notifier follows the event log for the whole term, suspended or not: a
		// notice is due whatever the primary fires.
		go func() { defer wg.Done(); n.serviceEnded("notifier", nt.Run(ctx)) }()
		// So does the DR-site sync sender (and the change log's retention).
		go func() { defer wg.Done(); n.serviceEnded("sitesync", n.sync.Run(ctx)) }()
		wg.Wait()
	}()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reaper = func() { cancel(); <-done }
	if n.epoch != epoch { // deposed meanwhile: its drain did not see this reaper
		n.goFn(n.reaper) // Stop waits for it
		n.reaper = nil
	}
}

// serviceEnded notes why one of the primary's services ended: a fenced write means
// another node holds the role, and this one steps down.
func (n *Node) serviceEnded(name string, err error) {
	if err == nil {
		return
	}
	n.log.Warn(name+" stopped", "err", err)
	if errors.Is(err, store.ErrFenced) {
		n.keeper.StepDown()
	}
}

// stopReaper stops the reaper and waits for it.
func (n *Node) stopReaper() {
	n.mu.Lock()
	stop := n.reaper
	n.reaper = nil
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
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

// event appends an event on its own, for what has no change of this node's to be
// written with: the step-down of a term that ended without a write, a release of a
// hold already gone, membership's observations (a lost node rejoined). Every other
// event is written by the store method that makes its change.
func (n *Node) event(p store.EventAppendParams) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.store.EventAppend(ctx, p); err != nil {
		n.log.Warn("cannot record event", "type", p.Type, "err", err)
	}
}

// newEvent is an event of this node, now.
func (n *Node) newEvent(typ, msg string, data map[string]any) store.EventAppendParams {
	return store.EventAppendParams{Type: typ, Node: n.cfg.NodeID, Message: msg, Data: data, Now: n.clock.Now()}
}

// clusterEvent is membership's Event: appended on its own (see event).
func (n *Node) clusterEvent(typ, msg string, data map[string]any) {
	n.event(n.newEvent(typ, msg, data))
}

// assigned wakes the workers that were given runs: this node's at once, the others with
// a hint over HTTP (and, on PostgreSQL, a pushed wake-up). Hints only make things sooner:
// every worker polls the repository anyway. One hint per node is in flight at a time; runs
// assigned meanwhile get one more hint when it is back.
func (n *Node) assigned(nodes []string) {
	for _, id := range nodes {
		if id == n.cfg.NodeID {
			n.worker.Wake()
			continue
		}
		addr := n.members.AddressOf(id)
		if addr == "" {
			continue
		}
		n.mu.Lock()
		_, busy := n.workHints[id]
		n.workHints[id] = busy // true: send another once the one in flight is back
		n.mu.Unlock()
		if busy {
			continue
		}
		n.goFn(func() {
			for {
				n.post(addr, n.peers.WorkHint)
				n.mu.Lock()
				again := n.workHints[id]
				if !again {
					delete(n.workHints, id)
				} else {
					n.workHints[id] = false
				}
				n.mu.Unlock()
				if !again {
					return
				}
			}
		})
	}
}

// WorkHint implements api.Backend.
func (n *Node) WorkHint() { n.worker.Wake() }

// bestStandby is the node a stopping primary hands the lease to.
func (n *Node) bestStandby(ctx context.Context) string {
	if s := n.members.Standbys(ctx); len(s) > 0 {
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
		if n.Mode() != ModeStandby || time.Since(n.upSince) < n.cfg.FailbackHold || time.Since(asked) < n.cfg.FailbackHold {
			continue
		}
		nodes, err := n.members.Live(ctx)
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
