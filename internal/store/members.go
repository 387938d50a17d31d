package store

import (
	"context"
	"time"
)

// Members is the concern of the cluster's nodes: who claims each node id, their
// heartbeats and load, declaring the silent ones lost, and operators' holds.
type Members interface {
	// NodeClaim makes p.Node.Holder the process of the node id: it records the row when
	// there is none or when its holder is p.Replace, and returns ErrClaimed otherwise
	// (then nothing, not even p.Events, is recorded). p.Events are written in the same
	// transaction.
	NodeClaim(ctx context.Context, p NodeClaimParams) error
	// NodeHeartbeat records a heartbeat of the node's claiming process, stamped with the
	// repository's clock, and p.Events in the same transaction; ErrClaimed when another
	// process claimed the id since (then nothing, not even the events, is recorded).
	NodeHeartbeat(ctx context.Context, p NodeHeartbeatParams) error
	// NodeList returns every node by id, with the repository's clock of the read.
	NodeList(ctx context.Context) ([]Node, error)
	// ClusterRead reads, in one statement, what the server-status table is made of:
	// the nodes, the active runs counted by node and state, every lease (the primary
	// and the scheduler slots) and the holds.
	ClusterRead(ctx context.Context) (ClusterView, error)
	// NodeLose declares a silent or dead node lost and re-queues its unfinished runs;
	// ErrFenced when p.Epoch is not the primary's; ErrConflict when the node is not
	// silent (or not held by p.Dead) any more. Its node.lost event, and p.Events, are
	// written in the same transaction.
	NodeLose(ctx context.Context, p NodeLoseParams) (NodeLoseResult, error)

	// HoldSet stores an operator hold (replacing one on the same target), and the events
	// that say so in the same transaction.
	HoldSet(ctx context.Context, h Hold, events ...EventAppendParams) error
	// HoldClear removes a hold (ErrNotFound when there is none: then nothing, not even
	// the events, is recorded), and the events that say so in the same transaction.
	HoldClear(ctx context.Context, target string, events ...EventAppendParams) error
	// HoldList lists the holds by target.
	HoldList(ctx context.Context) ([]Hold, error)
}

// Settings is a small key-value concern for values the cluster shares (the cluster
// secret's fingerprint, the secret key's check value).
type Settings interface {
	// SettingGet reads a stored setting (ErrNotFound when unset).
	SettingGet(ctx context.Context, key string) (string, error)
	// SettingSet stores one, and the events that say so in the same transaction.
	SettingSet(ctx context.Context, key, value string, now time.Time, events ...EventAppendParams) error
}

// NodeLoseParams declares Node lost if it has not sent a heartbeat for Silence (judged
// by the repository's clock), or, with Dead, at once if the row is still claimed by Dead:
// the holder whose liveness lock was found free (its process is gone).
type NodeLoseParams struct {
	Epoch   int64
	Node    string
	Silence time.Duration
	Dead    string
	// OutputCopies is the cluster's copy count for outputs whose job set none (0: 2),
	// against which the lost node's outputs are judged under-replicated.
	OutputCopies int
	// By is the node declaring the loss (the primary) and Why why, for the node.lost
	// event NodeLose records in its transaction.
	By  string
	Why string
	// Events, if set, are the further events of what the loss did, recorded after
	// node.lost in the same transaction (output.underreplicated, output.lost), computed
	// from its result; it must only compute.
	Events func(NodeLoseResult) []EventAppendParams
}

// NodeClaimParams claims Node.ID for the process Node.Holder, replacing the claim of
// Replace (a process found dead, or "" for a node id nobody claimed).
type NodeClaimParams struct {
	Node    Node
	Replace string
	// Events are recorded with the claim (the node's node.joined).
	Events []EventAppendParams
}

// Hold is an operator hold, stored so that it survives failover and restarts.
type Hold struct {
	Target string // HoldPrimary, or a node id
	Kind   string
	By     string // who set it: the client's address and the node that took the request
	At     time.Time
}

// NodeLoseResult says what NodeLose did.
type NodeLoseResult struct {
	Lost     bool    // false: the node is not silent (any more) or already lost
	Requeued []int64 // runs queued again for their next attempt
	Failed   []int64 // runs that had no attempt left
	// Outputs the node held a verified copy of, now below their copy count:
	// Underreplicated still have a holder on a node that is not lost or stopped,
	// OutputsLost have none.
	Underreplicated []OutputRef
	OutputsLost     []OutputRef
}

// NodeHeartbeatParams records a node's liveness and load.
type NodeHeartbeatParams struct {
	Node Node
	// Events are recorded with the heartbeat (the mode changes a stopping node's
	// heartbeats record: node.stopping with draining, node.stopped with stopped).
	Events []EventAppendParams
}

// Settings keys.
const (
	SettingDispatchAlgorithm = "dispatch.algorithm" // the cluster's load-balancing algorithm
	SettingNodeWeightPrefix  = "node.weight/"       // + node id: its weight as an operator set it
	SettingSchedulerSlots    = "scheduler.slots"    // how many scheduler slots share firing
)

// Hold kinds and the target of the primary role's suspension.
const (
	HoldSuspend = "suspend" // the cluster's primary role fires and dispatches nothing
	HoldStandby = "standby" // the node Target does not take the primary role
	HoldPrimary = "primary" // the Target of HoldSuspend
)

// Node is a cluster member as last heard of.
type Node struct {
	ID          string
	Holder      string // the process that claimed the id (node id and incarnation)
	Address     string
	Mode        string
	Priority    int
	Capacity    int
	Running     int
	Weight      float64 // load-balancing weight; 1 by default
	Tags        []string
	StartedAt   time.Time
	HeartbeatAt time.Time
	Version     string // the tandem version the node runs ("" before it reported one)
}

// ClusterView is what ClusterRead returns.
type ClusterView struct {
	Nodes  []Node     // by id
	Counts []RunCount // as RunCounts
	Leases []Lease    // by name, each with the repository's clock in Now
	Holds  []Hold     // by target
}

// Lease returns the lease named and whether there is one.
func (v ClusterView) Lease(name string) (Lease, bool) {
	for _, l := range v.Leases {
		if l.Name == name {
			return l, true
		}
	}
	return Lease{}, false
}
