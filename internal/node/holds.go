package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Operator holds are stored in the repository, not remembered by a process: the
// suspension belongs to the cluster's primary role (a node that takes the role over
// starts suspended), a standby's hold to its node id (kept across restarts). Both last
// until an operator releases them.

// loadHold reads this node's standby hold at start.
func (n *Node) loadHold(ctx context.Context) error {
	h, err := n.findHold(ctx, n.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("read this node's operator hold: %w", err)
	}
	if h != nil {
		n.mu.Lock()
		n.held = true
		n.mu.Unlock()
		n.log.Info(fmt.Sprintf("held by an operator (%s at %s): will not take over until released", h.By, h.At.Format(time.RFC3339)))
	}
	return nil
}

// findHold returns the hold on target, nil when there is none.
func (n *Node) findHold(ctx context.Context, target string) (*store.Hold, error) {
	holds, err := n.store.HoldList(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		if h.Target == target {
			return &h, nil
		}
	}
	return nil, nil
}

// primarySuspension reads the primary role's suspension for a new term, trying again
// until it is read or the term ends: a primary fires nothing it might have to unfire.
func (n *Node) primarySuspension(ctx context.Context) (*store.Hold, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, n.cfg.Lease.TTL)
		h, err := n.findHold(rctx, store.HoldPrimary)
		cancel()
		if err == nil {
			return h, nil
		}
		n.log.Warn("cannot read whether the primary role is suspended; firing nothing until it can", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(n.cfg.Lease.Renew):
		}
	}
}

// setHold stores a hold; clearHold removes one (none stored is not an error).
// setHold stores a hold and its event (typ, msg, with the node and who set it) in one
// transaction.
func (n *Node) setHold(ctx context.Context, target, kind, by, typ, msg string) error {
	return n.store.HoldSet(ctx, store.Hold{Target: target, Kind: kind, By: by, At: n.clock.Now()}, n.holdEvent(typ, msg, by))
}

// clearHold removes a hold and records its event in one transaction. A hold already
// gone still gets its event (the operator's action happened), appended on its own:
// HoldClear recorded nothing, so this is no duplicate, and there is no change to write
// it with.
func (n *Node) clearHold(ctx context.Context, target, by, typ, msg string) error {
	err := n.store.HoldClear(ctx, target, n.holdEvent(typ, msg, by))
	if errors.Is(err, store.ErrNotFound) {
		n.event(n.holdEvent(typ, msg, by))
		return nil
	}
	return err
}

func (n *Node) holdEvent(typ, msg, by string) store.EventAppendParams {
	return store.EventAppendParams{Type: typ, Node: n.cfg.NodeID, Message: msg, Data: map[string]any{"node": n.cfg.NodeID, "by": by}, Now: n.clock.Now()}
}
