package cluster

import (
	"context"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/store"
)

// HolderNode returns the node id of a lease holder ("id#incarnation").
func HolderNode(holder string) string {
	id, _, _ := strings.Cut(holder, "#")
	return id
}

// Status is the server-status table, read from the repository: each node's mode as the
// cluster sees it (the one rule of liveness: silent past Silence, by the repository's
// clock, or its process dead, is lost), load, hold and services; the primary, its epoch
// and the primary role's suspension. slots is the cluster's scheduler slot count (0 or
// 1: none, the primary fires everything).
func (m *Membership) Status(ctx context.Context, slots int) (wire.Status, error) {
	var st wire.Status
	// One statement: a console keeps reading this every second while a page shows it.
	view, err := m.p.Store.ClusterRead(ctx)
	if err != nil {
		return st, err
	}
	nodes, counts := view.Nodes, view.Counts
	now := m.p.Now()
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
	hold := map[string]*wire.Hold{}
	for _, h := range view.Holds {
		hold[h.Target] = &wire.Hold{Kind: h.Kind, By: h.By, At: h.At}
	}
	st.Suspended = hold[store.HoldPrimary]
	slotsOf := slotHolders(view, slots)
	cutoff := now.Add(-m.Silence())
	st.Nodes = make([]wire.NodeStatus, 0, len(nodes))
	for _, nd := range nodes {
		mode := nd.Mode
		switch {
		case mode == ModeStopped || mode == ModeLost:
		case nd.HeartbeatAt.Before(cutoff):
			mode = ModeLost // silent; the primary's reaper declares it lost
		case nd.ID != m.p.Self && m.Dead(ctx, nd.Holder):
			mode = ModeLost // its process is gone: the primary's reaper declares it lost at once
		case (mode == ModePrimary || mode == ModeSuspended) && nd.ID != st.Primary:
			mode = ModeStandby // its lease lapsed; it steps down by itself
		}
		row := wire.NodeStatus{ID: nd.ID, Address: nd.Address, Mode: mode, Running: running[nd.ID], Queued: queued[nd.ID],
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
func services(mode string, row wire.NodeStatus) []wire.Service {
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
	return []wire.Service{
		{Name: "Console", Status: console},
		{Name: "Failover Monitor", Status: monitor},
		{Name: "Scheduler", Status: sched},
		{Name: "Dispatcher", Status: disp},
		{Name: "Worker", Status: worker},
	}
}

// Dead reports whether the process holder's liveness lock is free: it is gone. False
// when the engine has no liveness locks, or on an error (the heartbeat's age still tells).
func (m *Membership) Dead(ctx context.Context, holder string) bool {
	if m.p.Liveness == nil || holder == "" {
		return false
	}
	d, err := m.p.Liveness.LivenessDead(ctx, holder)
	return err == nil && d
}

// slotHolders maps each node to the scheduler slots it holds; nil when the cluster has
// no slots (slots 0 or 1: the primary fires everything).
func slotHolders(view store.ClusterView, slots int) map[string][]string {
	if slots <= 1 {
		return nil
	}
	out := map[string][]string{}
	for i := range slots {
		if l, ok := view.Lease(store.SlotLease(i)); ok && l.ExpiresAt.After(l.Now) {
			id := HolderNode(l.Holder)
			out[id] = append(out[id], strconv.Itoa(i))
		}
	}
	return out
}
