package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/dispatch"
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

// elected is called by the lease keeper when this node becomes primary. It must not
// block the keeper: the term's start (reading the role's stored suspension, starting the
// services, recording the event) runs on a goroutine of its own.
func (n *Node) elected(epoch int64, prev store.Lease, how string) {
	n.metrics.Elected(epoch)
	n.mu.Lock()
	n.epoch = epoch
	n.mu.Unlock()
	n.startReaper(epoch)
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	n.termCancel = cancel
	n.mu.Unlock()
	n.goFn(func() {
		defer cancel()
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
		data := map[string]any{"epoch": epoch, "previous": HolderNode(prev.Holder), "suspended": hold != nil, "reason": takeoverReason(how)}
		if hold != nil {
			how += fmt.Sprintf("; the primary role is suspended (by %s at %s): firing and dispatching nothing until resumed", hold.By, hold.At.Format(time.RFC3339))
		} else {
			n.startRole(epoch)
		}
		n.log.Info(fmt.Sprintf("becoming primary (epoch %d): %s", epoch, how))
		n.event("primary.changed", fmt.Sprintf("%s became primary (epoch %d): %s", n.cfg.NodeID, epoch, how), data)
		_ = n.heartbeat(ctx) // show the new mode at once
	})
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

// deposed is called by the lease keeper when this node stops being primary.
func (n *Node) deposed(epoch int64, reason string) {
	n.metrics.Deposed()
	n.mu.Lock()
	n.epoch = 0
	n.suspended = false // the suspension is stored; the next primary reads it
	if n.termCancel != nil {
		n.termCancel()
		n.termCancel = nil
	}
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("stepping down (epoch %d): %s", epoch, reason))
	n.stopRole()
	n.stopReaper()
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

// startReaper starts the reaper of lost nodes and the notifier under epoch, for the
// primary's whole term:
// a suspended primary fires and dispatches nothing, but still declares silent nodes
// lost and queues their runs again (for whoever dispatches next).
func (n *Node) startReaper(epoch int64) {
	n.stopReaper() // one reaper at a time
	ctx, cancel := context.WithCancel(context.Background())
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
	n.reaper = func() { cancel(); <-done }
	n.mu.Unlock()
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

func (n *Node) event(typ, msg string, data map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.store.EventAppend(ctx, store.EventAppendParams{Type: typ, Node: n.cfg.NodeID, Message: msg, Data: data, Now: n.clock.Now()}); err != nil {
		n.log.Warn("cannot record event", "type", typ, "err", err)
	}
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
