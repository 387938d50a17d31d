package node

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/store"
)

// Status implements api.Backend: the server-status table from the repository.
func (n *Node) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return st, err
	}
	counts, err := n.store.RunCounts(ctx)
	if err != nil {
		return st, err
	}
	l, err := n.store.LeaseGet(ctx, store.PrimaryLease)
	if err == nil && l.ExpiresAt.After(time.Now()) {
		st.Primary, st.Epoch = HolderNode(l.Holder), l.Epoch
	} else if err == nil {
		st.Epoch = l.Epoch
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
	cutoff := time.Now().Add(-time.Duration(n.cfg.Heartbeat.MaxMissed) * n.cfg.Heartbeat.Interval)
	st.Nodes = make([]api.NodeStatus, 0, len(nodes))
	for _, nd := range nodes {
		mode := nd.Mode
		switch {
		case nd.HeartbeatAt.Before(cutoff) && mode != ModeStopping:
			mode = ModeLost
		case mode == ModeStopping && nd.HeartbeatAt.Before(cutoff):
			mode = "stopped"
		case nd.ID == st.Primary:
			mode = ModePrimary
		case mode == ModePrimary:
			mode = ModeStandby // its lease lapsed; it steps down by itself
		}
		row := api.NodeStatus{ID: nd.ID, Address: nd.Address, Mode: mode, Running: running[nd.ID], Queued: queued[nd.ID],
			Capacity: nd.Capacity, Priority: nd.Priority, Tags: nd.Tags, HeartbeatAt: nd.HeartbeatAt}
		if row.Tags == nil {
			row.Tags = []string{}
		}
		if mode == ModePrimary {
			row.Queued += unassigned // the cluster's queue waits on the primary's dispatcher
		}
		row.Services = services(mode, row)
		st.Nodes = append(st.Nodes, row)
	}
	return st, nil
}

// services is the status of each service of a node in a mode.
func services(mode string, row api.NodeStatus) []api.Service {
	down := mode == ModeLost || mode == "stopped"
	pick := func(primary, other string) string {
		switch {
		case down:
			return "Down"
		case mode == ModePrimary:
			return primary
		}
		return other
	}
	worker := "Ready"
	switch {
	case down:
		worker = "Down"
	case row.Capacity == 0:
		worker = "Disabled"
	case row.Running >= row.Capacity:
		worker = "Busy"
	case mode == ModeStopping:
		worker = "Draining"
	}
	monitor := pick("Monitoring", "Standing by")
	if mode == ModeStopping {
		monitor = "Stopping"
	}
	return []api.Service{
		{Name: "Console", Status: pick("Listening", "Listening")},
		{Name: "Failover Monitor", Status: monitor},
		{Name: "Scheduler", Status: pick("Firing", "Idle")},
		{Name: "Dispatcher", Status: pick("Ready", "Idle")},
		{Name: "Worker", Status: worker},
	}
}
