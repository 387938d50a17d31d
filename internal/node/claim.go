package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// lockDataDir takes an exclusive lock on the data directory for this process: two
// processes must never write one directory's outputs and attempt records. The kernel
// frees the lock when the process dies; release frees it on a graceful stop.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "tandem.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(owner))
		if who == "" {
			who = "another process"
		}
		return nil, fmt.Errorf("data directory %s is in use by %s (it holds %s); give this process its own --data-dir", dir, who, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("tandem process "+strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// ErrNodeIDInUse is returned by Start when another live process has this node's id.
var ErrNodeIDInUse = errors.New("node id in use")

// claim makes this process the holder of its node id. A previous holder that stopped,
// was declared lost or is dead is replaced at once. Dead means its liveness lock is free
// or, while the lock still reads held (a PostgreSQL session outlives a killed process
// until the server notices), that it stays silent for the heartbeat silence. A holder
// whose heartbeat advances meanwhile is alive, and Start fails.
func (n *Node) claim(ctx context.Context) error {
	var first time.Time // the previous holder's heartbeat when first read
	for {
		prev, found, err := n.findNode(ctx)
		if err != nil {
			return fmt.Errorf("claim node id %s: %w", n.cfg.NodeID, err)
		}
		replace := prev.Holder
		if found && prev.Holder != "" && prev.Holder != n.holder && prev.Mode != ModeStopped && prev.Mode != ModeLost {
			gone, why, err := n.holderGone(ctx, prev)
			if err != nil {
				return fmt.Errorf("claim node id %s: %w", n.cfg.NodeID, err)
			}
			if first.IsZero() {
				first = prev.HeartbeatAt
			}
			switch {
			case !gone && prev.HeartbeatAt.After(first):
				return fmt.Errorf("node id %s is in use by a live process at %s (process %s, last heartbeat %s ago, mode %s): stop it first, or give this process another --node-id: %w",
					prev.ID, prev.Address, prev.Holder, n.heartbeatAge(ctx, prev), prev.Mode, ErrNodeIDInUse)
			case !gone:
				select { // not proven either way yet: its next heartbeat, or its silence, tells
				case <-ctx.Done():
					return fmt.Errorf("claim node id %s: %w", n.cfg.NodeID, ctx.Err())
				case <-time.After(n.cfg.Heartbeat.Interval / 10):
				}
				continue
			}
			n.log.Info(fmt.Sprintf("taking over node id %s from its previous process %s: %s", prev.ID, prev.Holder, why))
		}
		// The claim registers the node, so it records its node.joined.
		self := n.describe()
		joined := n.newEvent("node.joined", fmt.Sprintf("node %s started at %s", n.cfg.NodeID, n.cfg.Advertise), map[string]any{"node": n.cfg.NodeID})
		err = n.store.NodeClaim(ctx, store.NodeClaimParams{Node: self, Replace: replace, Events: []store.EventAppendParams{joined}})
		if errors.Is(err, store.ErrClaimed) {
			continue // another process claimed it between the read and the claim: look again
		}
		return err
	}
}

// findNode reads this node's row.
func (n *Node) findNode(ctx context.Context) (store.Node, bool, error) {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return store.Node{}, false, err
	}
	for _, nd := range nodes {
		if nd.ID == n.cfg.NodeID {
			return nd, true, nil
		}
	}
	return store.Node{}, false, nil
}

// holderGone reports whether the process that claimed a node's row is gone, and why: its
// liveness lock is free, or it has been silent for the heartbeat silence.
func (n *Node) holderGone(ctx context.Context, nd store.Node) (bool, string, error) {
	if lv, ok := n.store.(store.Liveness); ok {
		dead, err := lv.LivenessDead(ctx, nd.Holder)
		if err != nil {
			return false, "", err
		}
		if dead {
			return true, "its liveness lock is free", nil
		}
	}
	if age := n.heartbeatAge(ctx, nd); age > n.members.Silence() {
		return true, fmt.Sprintf("silent for %s", age), nil
	}
	return false, "", nil
}

// heartbeatAge is how long ago, by the repository's clock, the node's last heartbeat was.
func (n *Node) heartbeatAge(ctx context.Context, nd store.Node) time.Duration {
	now := n.clock.Now()
	if l, err := n.store.LeaseGet(ctx, store.PrimaryLease); err == nil && !l.Now.IsZero() {
		now = l.Now
	}
	return now.Sub(nd.HeartbeatAt).Round(time.Millisecond)
}
