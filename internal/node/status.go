package node

import (
	"context"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/store"
)

// Status implements api.Backend: the server-status table from the repository, read in
// one statement (store.ClusterRead).
func (n *Node) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	view, err := n.store.ClusterRead(ctx)
	if err != nil {
		return st, err
	}
	nodes, counts := view.Nodes, view.Counts
	now := n.clock.Now()
	if l, ok := view.Lease(store.PrimaryLease); ok {
		now = l.Now // heartbeats and the lease are stamped by the repository's clock
		st.Epoch = l.Epoch
		if l.ExpiresAt.After(l.Now) {
			st.Primary = HolderNode(l.Holder)
		}
	}
	running, queued := map[string]int{}, map[string]int{}
	unassigned := 0
	for _, c := range counts {
		switch {
		case c.State == store.RunRunning:
			running[c.Node] += c.Count
		case c.State == store.RunAssigned:
			queued[c.Node] += c.Count
		case c.Node == "":
			unassigned += c.Count
		}
	}
	hold := map[string]*api.Hold{}
	for _, h := range view.Holds {
		hold[h.Target] = &api.Hold{Kind: h.Kind, By: h.By, At: h.At}
	}
	st.Suspended = hold[store.HoldPrimary]
	slotsOf := n.slotHolders(view)
	lv, _ := n.store.(store.Liveness)
	cutoff := now.Add(-n.members.Silence())
	st.Nodes = make([]api.NodeStatus, 0, len(nodes))
	for _, nd := range nodes {
		mode := nd.Mode
		switch {
		case mode == ModeStopped || mode == ModeLost:
		case nd.HeartbeatAt.Before(cutoff):
			mode = ModeLost // silent; the primary's reaper declares it lost
		case nd.ID != n.cfg.NodeID && lv != nil && nd.Holder != "" && dead(ctx, lv, nd.Holder):
			mode = ModeLost // its process is gone: the primary's reaper declares it lost at once
		case (mode == ModePrimary || mode == ModeSuspended) && nd.ID != st.Primary:
			mode = ModeStandby // its lease lapsed; it steps down by itself
		}
		row := api.NodeStatus{ID: nd.ID, Address: nd.Address, Mode: mode, Running: running[nd.ID], Queued: queued[nd.ID],
			Capacity: nd.Capacity, Priority: nd.Priority, Weight: nd.Weight, Tags: nd.Tags, HeartbeatAt: nd.HeartbeatAt,
			StartedAt: nd.StartedAt, Version: nd.Version}
		if row.Tags == nil {
			row.Tags = []string{}
		}
		if mode == ModePrimary || mode == ModeSuspended {
			row.Queued += unassigned // the cluster's queue waits on the primary's dispatcher
		}
		switch {
		case mode == ModePrimary || mode == ModeSuspended:
			row.Hold = st.Suspended
		case mode != ModeLost && mode != ModeStopped:
			row.Hold = hold[nd.ID]
		}
		row.Services = services(mode, row)
		if slotsOf != nil && mode != ModeLost && mode != ModeStopped {
			// With scheduler slots, the Scheduler service says which slots the node fires.
			label := "Idle"
			if held := slotsOf[nd.ID]; len(held) > 0 {
				label = "Firing slots " + strings.Join(held, ",")
			}
			if mode == ModeSuspended && label != "Idle" {
				label = "Suspended (slots " + strings.Join(slotsOf[nd.ID], ",") + ")"
			}
			row.Services[2].Status = label
			row.Slots = slotsOf[nd.ID]
		}
		st.Nodes = append(st.Nodes, row)
	}
	return st, nil
}

// services is the status of each service of a node in a mode, in the seed's terms.
func services(mode string, row api.NodeStatus) []api.Service {
	down := mode == ModeLost || mode == ModeStopped
	console, monitor, sched, disp := "Listening", "Standing by", "Idle", "Idle"
	switch mode {
	case ModePrimary:
		monitor, sched, disp = "Monitoring", "Firing", "Ready"
	case ModeSuspended:
		monitor, sched, disp = "Monitoring", "Suspended", "Suspended"
	case ModeHeld:
		monitor = "Held"
	case ModeWorker:
		monitor = "Off (worker)"
	case ModeDraining:
		monitor = "Stopping"
	}
	worker := "Ready"
	switch {
	case row.Capacity == 0:
		worker = "Disabled"
	case mode == ModeDraining:
		worker = "Draining"
	case row.Running >= row.Capacity:
		worker = "Busy"
	}
	if down {
		console, monitor, sched, disp, worker = "Down", "Down", "Down", "Down", "Down"
	}
	return []api.Service{
		{Name: "Console", Status: console},
		{Name: "Failover Monitor", Status: monitor},
		{Name: "Scheduler", Status: sched},
		{Name: "Dispatcher", Status: disp},
		{Name: "Worker", Status: worker},
	}
}

// dead reports whether holder's liveness lock is free; an error reads as alive (the
// heartbeat's age still tells).
func dead(ctx context.Context, lv store.Liveness, holder string) bool {
	d, err := lv.LivenessDead(ctx, holder)
	return err == nil && d
}

// slotHolders maps each node to the scheduler slots it holds; nil when the cluster has
// no slots (the primary fires everything).
func (n *Node) slotHolders(view store.ClusterView) map[string][]string {
	n.mu.Lock()
	sl := n.slots
	n.mu.Unlock()
	if sl == nil {
		return nil
	}
	out := map[string][]string{}
	for i := range sl.count {
		l, ok := view.Lease(store.SlotLease(i))
		if ok && l.ExpiresAt.After(l.Now) {
			id := HolderNode(l.Holder)
			out[id] = append(out[id], strconv.Itoa(i))
		}
	}
	return out
}
