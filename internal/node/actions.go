package node

import (
	"context"
	"fmt"

	"github.com/tandemhq/tandem/internal/store"
)

// Operator actions on nodes.
const (
	ActionSuspend = "suspend"
	ActionResume  = "resume"
	ActionStandby = "standby"
	ActionStop    = "stop"
	ActionRestart = "restart"
)

func refuse(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), store.ErrConflict)
}

// NodeAction implements api.Backend: an operator action on this node, asked for by `by`.
// Actions that make no sense in the node's mode are refused with store.ErrConflict.
// Holds are stored before they take effect and released before the node acts again.
func (n *Node) NodeAction(ctx context.Context, action, by string) (string, error) {
	mode := n.Mode()
	switch action {
	case ActionSuspend:
		if mode != ModePrimary {
			return mode, refuse("node %s is %s: only the primary can be suspended", n.cfg.NodeID, mode)
		}
		if err := n.setHold(ctx, store.HoldPrimary, store.HoldSuspend, by, "primary.suspended", fmt.Sprintf("primary %s suspended by %s", n.cfg.NodeID, by)); err != nil {
			return mode, fmt.Errorf("suspend: %w", err)
		}
		n.mu.Lock()
		n.suspended = true
		n.mu.Unlock()
		n.stopRole()
		n.log.Info(fmt.Sprintf("suspended by an operator (%s, epoch %d): keeping the lease, firing and dispatching nothing; the suspension holds for any new primary until resumed", by, n.keeperEpoch()))
	case ActionResume:
		switch mode {
		case ModeSuspended:
			if err := n.clearHold(ctx, store.HoldPrimary, by, "node.resumed", fmt.Sprintf("primary %s resumed by %s", n.cfg.NodeID, by)); err != nil {
				return mode, fmt.Errorf("resume: %w", err)
			}
			n.mu.Lock()
			n.suspended = false
			term := n.term
			n.mu.Unlock()
			epoch := term.Epoch
			n.startRole(term)
			n.log.Info(fmt.Sprintf("resumed by an operator (%s, epoch %d): firing and dispatching again", by, epoch))
		case ModeHeld:
			if err := n.clearHold(ctx, n.cfg.NodeID, by, "node.resumed", fmt.Sprintf("standby %s will take over again (released by %s)", n.cfg.NodeID, by)); err != nil {
				return mode, fmt.Errorf("resume: %w", err)
			}
			n.mu.Lock()
			n.held = false
			n.mu.Unlock()
			n.log.Info(fmt.Sprintf("released by an operator (%s): standing by to take over again", by))
		default:
			return mode, refuse("node %s is %s: only a suspended primary or a held standby can be resumed", n.cfg.NodeID, mode)
		}
	case ActionStandby:
		if mode != ModeStandby {
			return mode, refuse("node %s is %s: only a standby can be held (switch the primary role away first)", n.cfg.NodeID, mode)
		}
		if err := n.setHold(ctx, n.cfg.NodeID, store.HoldStandby, by, "node.held", fmt.Sprintf("standby %s held by %s: it will not take over", n.cfg.NodeID, by)); err != nil {
			return mode, fmt.Errorf("hold: %w", err)
		}
		n.mu.Lock()
		n.held = true
		n.mu.Unlock()
		n.log.Info(fmt.Sprintf("held by an operator (%s): will not take over, also after a restart, until released", by))
	case ActionStop, ActionRestart:
		n.log.Info(fmt.Sprintf("%s requested by an operator (%s)", action, by))
		n.requestStop(action == ActionRestart)
		return ModeDraining, nil
	default:
		return mode, fmt.Errorf("unknown action %q (suspend, resume, standby, stop, restart): %w", action, store.ErrConflict)
	}
	_ = n.heartbeat(ctx)
	return n.Mode(), nil
}

func (n *Node) keeperEpoch() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// Switch implements api.Backend: a planned handover of the primary role to `to` (the
// best standby when empty). Only the primary switches.
func (n *Node) Switch(ctx context.Context, to string) (string, error) {
	if m := n.Mode(); m != ModePrimary && m != ModeSuspended {
		return "", refuse("node %s is %s, not the primary", n.cfg.NodeID, m)
	}
	standbys := n.members.Standbys(ctx)
	if to == "" {
		if len(standbys) == 0 {
			return "", refuse("no live standby to switch to")
		}
		to = standbys[0].ID
	}
	if to == n.cfg.NodeID {
		return "", refuse("node %s is already the primary", to)
	}
	ok := false
	for _, s := range n.members.Switchable(ctx) {
		ok = ok || s.ID == to
	}
	if !ok {
		return "", refuse("node %s is not a live standby (held, worker, lost or unknown)", to)
	}
	n.log.Info(fmt.Sprintf("switching over to %s at an operator's request", to))
	if err := n.keeper.Handover(ctx, to); err != nil {
		return "", err
	}
	// A hint so the successor looks at the lease now rather than at its next poll.
	if addr := n.NodeAddress(ctx, to); addr != "" {
		n.goFn(func() { n.hint(addr) })
	}
	return to, nil
}

// hint tells a node to look at the lease now. Best effort: it polls anyway.
func (n *Node) hint(addr string) { n.post(addr, n.peers.LeaseHint) }

// post sends a hint to the node at addr. Best effort: hints only make things happen
// sooner.
func (n *Node) post(addr string, send func(ctx context.Context, addr string) error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Lease.TTL)
	defer cancel()
	_ = send(ctx, addr)
}

// LeaseHint implements api.Backend.
func (n *Node) LeaseHint() { n.keeper.Wake() }

// askSwitch asks the primary at addr to hand the role over to `to`.
func (n *Node) askSwitch(ctx context.Context, addr, to string) error {
	return n.peers.Switch(ctx, addr, to)
}

// copiesNeeded wakes the copiers: this node's at once, the other live nodes' through a
// hint (best effort: they look every output.PollDefault anyway).
func (n *Node) copiesNeeded() {
	n.outputs.Hint()
	n.mu.Lock()
	stopping := n.stopping
	n.mu.Unlock()
	if stopping || !n.hinting.CompareAndSwap(false, true) {
		return // a round of hints is on its way
	}
	n.goFn(func() {
		defer n.hinting.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Heartbeat.Interval)
		defer cancel()
		nodes, err := n.members.Live(ctx)
		if err != nil {
			return
		}
		for _, nd := range nodes {
			if nd.ID != n.cfg.NodeID && nd.Mode != ModeDraining {
				_ = n.peers.OutputsHint(ctx, nd.Address)
			}
		}
	})
}
