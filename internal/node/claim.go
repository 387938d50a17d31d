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
// was declared lost or is dead (its liveness lock is free, or, on an engine without
// liveness locks, it is silent) is replaced at once; a live one makes Start fail.
func (n *Node) claim(ctx context.Context) error {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return fmt.Errorf("claim node id %s: %w", n.cfg.NodeID, err)
	}
	replace := ""
	for _, nd := range nodes {
		if nd.ID != n.cfg.NodeID {
			continue
		}
		replace = nd.Holder
		if nd.Holder == "" || nd.Mode == ModeStopped || nd.Mode == ModeLost {
			break
		}
		dead, err := n.holderDead(ctx, nd)
		if err != nil {
			return fmt.Errorf("claim node id %s: %w", n.cfg.NodeID, err)
		}
		if !dead {
			age := time.Duration(0)
			if l, err := n.store.LeaseGet(ctx, store.PrimaryLease); err == nil && !l.Now.IsZero() {
				age = l.Now.Sub(nd.HeartbeatAt).Round(time.Millisecond)
			}
			return fmt.Errorf("node id %s is in use by a live process at %s (process %s, last heartbeat %s ago, mode %s): stop it first, or give this process another --node-id: %w",
				nd.ID, nd.Address, nd.Holder, age, nd.Mode, ErrNodeIDInUse)
		}
		n.log.Info(fmt.Sprintf("taking over node id %s from its previous process %s, which is gone", nd.ID, nd.Holder))
	}
	self := n.describe()
	if err := n.store.NodeClaim(ctx, store.NodeClaimParams{Node: self, Replace: replace, Now: n.clock.Now()}); err != nil {
		if errors.Is(err, store.ErrClaimed) {
			return fmt.Errorf("node id %s was claimed by another process just now: %w", n.cfg.NodeID, ErrNodeIDInUse)
		}
		return err
	}
	return nil
}

// holderDead reports whether the process that claimed a node's row is gone: its liveness
// lock is free or, without liveness locks, it has been silent for the heartbeat silence.
func (n *Node) holderDead(ctx context.Context, nd store.Node) (bool, error) {
	if lv, ok := n.store.(store.Liveness); ok && nd.Holder != "" {
		return lv.LivenessDead(ctx, nd.Holder)
	}
	l, err := n.store.LeaseGet(ctx, store.PrimaryLease)
	if err != nil {
		return false, err
	}
	return nd.HeartbeatAt.Before(l.Now.Add(-n.members.Silence())), nil
}
