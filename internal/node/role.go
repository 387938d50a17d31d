package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"log/slog"

	"github.com/tandemhq/tandem/internal/dispatch"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
)

// role is the set of services a node runs while it is primary, under one epoch.
type role struct {
	epoch  int64
	sched  *scheduler.Scheduler
	disp   *dispatch.Dispatcher
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// elected starts the primary's services under the new epoch. Called by the lease keeper.
func (n *Node) elected(epoch int64, prev store.Lease) {
	reason := "no primary before"
	switch {
	case prev.Holder == n.holder:
		reason = "this process still held the lease (renewed after a failed renewal)"
	case prev.Holder != "":
		reason = fmt.Sprintf("lease held by %s expired or was resigned", prev.Holder)
	}
	n.log.Info(fmt.Sprintf("becoming primary (epoch %d): %s", epoch, reason))
	ctx, cancel := context.WithCancel(context.Background())
	r := &role{epoch: epoch, cancel: cancel}
	r.sched = scheduler.New(scheduler.Params{Store: n.store, Log: n.log.With("component", "scheduler"), Epoch: epoch,
		Observe: func([]store.FireResult, time.Time) { r.disp.Wake() }})
	r.disp = dispatch.New(dispatch.Params{Store: n.store, Log: n.log.With("component", "dispatcher"), Epoch: epoch,
		Targets: n.targets, Assigned: n.assigned})
	run := func(name string, fn func(context.Context) error) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := fn(ctx); err != nil {
				n.log.Warn(name+" stopped", "err", err)
				if errors.Is(err, store.ErrFenced) {
					n.keeper.StepDown()
				}
			}
		}()
	}
	run("scheduler", r.sched.Run)
	run("dispatcher", r.disp.Run)
	n.mu.Lock()
	n.role = r
	if n.mode != ModeStopping {
		n.mode = ModePrimary
	}
	n.mu.Unlock()
	n.event("primary.changed", fmt.Sprintf("%s became primary (epoch %d): %s", n.cfg.NodeID, epoch, reason), map[string]any{"epoch": epoch, "previous": HolderNode(prev.Holder)})
}

// deposed stops the primary's services. Called by the lease keeper.
func (n *Node) deposed(epoch int64, reason string) {
	n.mu.Lock()
	r := n.role
	n.role = nil
	if n.mode == ModePrimary {
		n.mode = ModeStandby
	}
	n.mu.Unlock()
	n.log.Info(fmt.Sprintf("stepping down (epoch %d): %s", epoch, reason))
	if r != nil {
		r.cancel()
		r.wg.Wait()
	}
}

func (n *Node) event(typ, msg string, data map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.store.EventAppend(ctx, store.EventAppendParams{Type: typ, Node: n.cfg.NodeID, Message: msg, Data: data, Now: time.Now()}); err != nil {
		n.log.Warn("cannot record event", "type", typ, "err", err)
	}
}

// targets lists the live nodes that take runs, with their free capacity.
func (n *Node) targets(ctx context.Context) ([]dispatch.Target, error) {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := n.store.RunCounts(ctx)
	if err != nil {
		return nil, err
	}
	busy := map[string]int{}
	for _, c := range counts {
		if c.State == store.RunAssigned || c.State == store.RunRunning {
			busy[c.Node] += c.Count
		}
	}
	cutoff := time.Now().Add(-time.Duration(n.cfg.Heartbeat.MaxMissed) * n.cfg.Heartbeat.Interval)
	var out []dispatch.Target
	for _, nd := range nodes {
		if nd.Mode == ModeStopping || nd.Mode == ModeLost || nd.HeartbeatAt.Before(cutoff) || nd.Capacity == 0 {
			continue
		}
		out = append(out, dispatch.Target{ID: nd.ID, Free: max(nd.Capacity-busy[nd.ID], 0), Tags: nd.Tags})
	}
	return out, nil
}

// assigned wakes the workers that were given runs: this node's at once; others poll.
func (n *Node) assigned(nodes []string) {
	for _, id := range nodes {
		if id == n.cfg.NodeID {
			n.worker.Wake()
		}
	}
}

func removeOutputs(dataDir string, outs []store.Output, log *slog.Logger) error {
	var errs []error
	dirs := map[string]bool{}
	for _, o := range outs {
		dir := filepath.Join(dataDir, "outputs", strconv.FormatInt(o.RunID, 10))
		dirs[dir] = true
	}
	for dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(outs) > 0 {
		log.Info("outputs past retention deleted", "files", len(outs), "runs", len(dirs))
	}
	return errors.Join(errs...)
}
