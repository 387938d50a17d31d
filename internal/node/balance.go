package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/dispatch"
	"github.com/tandemhq/tandem/internal/store"
)

// Load balancing reads two stored settings: the cluster's algorithm (so every primary
// uses the same) and each node's weight as an operator set it (so it outlives the
// node's process). A setting given in a node's configuration is stored at its start.

// applyBalanceConfig stores what this node's configuration sets and reads this node's
// weight: the configured one, else the stored one, else 1.
func (n *Node) applyBalanceConfig(ctx context.Context) error {
	if a := n.cfg.Dispatch.Algorithm; a != "" {
		if err := n.store.SettingSet(ctx, store.SettingDispatchAlgorithm, a, n.clock.Now()); err != nil {
			return err
		}
		n.log.Info(fmt.Sprintf("the cluster's load-balancing algorithm is %s (from this node's configuration)", a))
	}
	key := store.SettingNodeWeightPrefix + n.cfg.NodeID
	weight := n.cfg.Weight
	switch {
	case weight > 0:
		if err := n.store.SettingSet(ctx, key, strconv.FormatFloat(weight, 'g', -1, 64), n.clock.Now()); err != nil {
			return err
		}
	default:
		weight = 1
		v, err := n.store.SettingGet(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if w, err := strconv.ParseFloat(v, 64); err == nil && w > 0 {
				weight = w
			}
		}
	}
	n.mu.Lock()
	n.weight = weight
	n.mu.Unlock()
	return nil
}

// NodeWeight implements api.Backend.
func (n *Node) NodeWeight(ctx context.Context, weight float64, by string) error {
	// One change of weight at a time, so that the event's previous weight is the one
	// this change replaced.
	n.weightMu.Lock()
	defer n.weightMu.Unlock()
	n.mu.Lock()
	was := n.weight
	n.mu.Unlock()
	ev := n.newEvent("node.weight", fmt.Sprintf("node %s weight %g (was %g), set by %s", n.cfg.NodeID, weight, was, by),
		map[string]any{"node": n.cfg.NodeID, "weight": weight, "previous": was, "by": by})
	if err := n.store.SettingSet(ctx, store.SettingNodeWeightPrefix+n.cfg.NodeID, strconv.FormatFloat(weight, 'g', -1, 64), n.clock.Now(), ev); err != nil {
		return fmt.Errorf("set weight: %w", err)
	}
	n.mu.Lock()
	n.weight = weight
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("load-balancing weight %g (was %g), set by %s", weight, was, by))
	return n.heartbeat(ctx)
}

// algorithmCache reads the cluster's algorithm for the dispatcher at most once a second.
type algorithmCache struct {
	st  store.Store
	mu  sync.Mutex
	at  time.Time
	val string
}

func (c *algorithmCache) get(ctx context.Context) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < time.Second {
		return c.val
	}
	v, err := c.st.SettingGet(ctx, store.SettingDispatchAlgorithm)
	switch {
	case errors.Is(err, store.ErrNotFound):
		v = dispatch.AlgorithmDefault
	case err != nil:
		return c.val // keep the last known; read again next pass
	}
	c.val, c.at = v, time.Now()
	return v
}
