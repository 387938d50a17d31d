package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/lease"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
)

// Scheduler slots. With scheduler.slots = N > 1 the firing is shared: N leases
// scheduler/0 … scheduler/N−1, each kept like the primary lease (its own epoch, renewal,
// trust window and crash fast path), and slot i's holder fires the schedules whose id mod
// N is i, each firing fenced by the slot's epoch. The primary still dispatches, reaps and
// holds the role's suspension, which stops every slot's firing too. Eligible nodes (not
// workers, not held, not draining) take free slots, a node holding fewer slots first, and
// every scheduler.slot_check a node holding more than its share hands one over to the
// eligible node holding fewest. N is stored in the repository: every node must agree.

// slots is this node's part in the scheduler slots.
type slots struct {
	n       *Node
	count   int
	keepers []*lease.Keeper

	mu    sync.Mutex
	terms map[int]*slotTerm // slots held now
}

// slotTerm is one slot held: its epoch and the scheduler firing it (nil while the
// primary role is suspended).
type slotTerm struct {
	epoch  int64
	term   lease.Term
	cancel context.CancelFunc
	sched  *scheduler.Scheduler
	done   chan struct{}
}

// resolveSlots settles how many scheduler slots the cluster has: the stored number, or
// this node's configuration on a repository that has none; a configuration that
// disagrees with the stored number is an error.
func (n *Node) resolveSlots(ctx context.Context) (int, error) {
	want := n.cfg.Scheduler.Slots
	v, err := n.store.SettingGet(ctx, store.SettingSchedulerSlots)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if want == 0 {
			return 1, nil
		}
		if err := n.store.SettingSet(ctx, store.SettingSchedulerSlots, strconv.Itoa(want), n.clock.Now()); err != nil {
			return 0, err
		}
		return want, nil
	case err != nil:
		return 0, err
	}
	stored, err := strconv.Atoi(v)
	if err != nil || stored < 1 {
		return 0, fmt.Errorf("the repository's scheduler.slots %q is not a number of slots", v)
	}
	if want != 0 && want != stored {
		if !n.cfg.Scheduler.Reset {
			return 0, fmt.Errorf("scheduler.slots is %d in this node's configuration but %d in the repository: every node must agree. To change it, stop every node, start one with --scheduler-slots %d --reset-slots, then the others with --scheduler-slots %d (or none)", want, stored, want, want)
		}
		live, err := n.members.Live(ctx)
		if err != nil {
			return 0, err
		}
		for _, nd := range live {
			if nd.ID != n.cfg.NodeID {
				return 0, fmt.Errorf("--reset-slots: node %s is live; stop every node before changing scheduler.slots", nd.ID)
			}
		}
		if err := n.store.SettingSet(ctx, store.SettingSchedulerSlots, strconv.Itoa(want), n.clock.Now()); err != nil {
			return 0, err
		}
		n.log.Info(fmt.Sprintf("scheduler.slots changed from %d to %d (--reset-slots)", stored, want))
		return want, nil
	}
	return stored, nil
}

// startSlots starts a keeper per slot when the cluster has more than one.
func (n *Node) startSlots(ctx context.Context, count int) {
	if count <= 1 {
		return
	}
	s := &slots{n: n, count: count, terms: map[int]*slotTerm{}}
	lv, _ := n.store.(store.Liveness)
	for i := range count {
		k := lease.New(lease.Params{Name: store.SlotLease(i), Store: n.store, Liveness: lv, Log: n.log.With("component", "slot", "slot", i),
			Holder: n.holder, Node: n.cfg.NodeID, Renew: n.cfg.Lease.Renew, TTL: n.cfg.Lease.TTL, Margin: n.cfg.Lease.Margin,
			Eligible: n.eligible, Rank: s.rank, Event: s.taken(i),
			Elected: func(t lease.Term) { s.elected(i, t) },
			Deposed: func(t lease.Term) { s.deposed(i, t) }})
		s.keepers = append(s.keepers, k)
		n.goFn(func() { _ = k.Run(ctx) })
	}
	n.mu.Lock()
	n.slots = s
	n.mu.Unlock()
	n.goFn(func() { s.spread(ctx) })
	n.goFn(func() { s.followSuspension(ctx) })
}

// rank is this node's place in the order in which nodes take a free slot: how many other
// live eligible nodes hold fewer slots, or as many with a smaller id. A node whose
// process died (its liveness lock is free) is not counted: it takes nothing. So the
// best-placed survivor takes a dead holder's slot at once, and the others each wait one
// more lease RankStep. If the holdings cannot be read, the slots held stand in.
func (s *slots) rank(ctx context.Context) int {
	mine := s.held()
	holding, _, err := s.holdings(ctx)
	if err != nil {
		return mine
	}
	live, err := s.n.members.Live(ctx)
	if err != nil {
		return mine
	}
	r := 0
	for _, nd := range live {
		if nd.ID == s.n.cfg.NodeID || (nd.Mode != ModePrimary && nd.Mode != ModeSuspended && nd.Mode != ModeStandby) {
			continue
		}
		if s.n.members.Dead(ctx, nd.Holder) {
			continue
		}
		if h := holding[nd.ID]; h < mine || h == mine && nd.ID < s.n.cfg.NodeID {
			r++
		}
	}
	return r
}

// held is how many slots this node holds.
func (s *slots) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.terms)
}

// Held lists the slots this node holds, in order.
func (s *slots) Held() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i := range s.terms {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

func (s *slots) elected(i int, term lease.Term) {
	epoch, how := term.Epoch, term.How
	s.n.log.Info(fmt.Sprintf("firing slot %d of %d (epoch %d): %s", i, s.count, epoch, how))
	s.mu.Lock()
	s.terms[i] = &slotTerm{epoch: epoch, term: term}
	s.mu.Unlock()
	// Off the keeper's goroutine: reading the suspension must not hold up its renewals.
	// Its slot.taken was recorded with the lease (taken).
	s.n.goFn(func() { s.sync(term.Context()) })
}

// taken is slot i's slot.taken event, recorded by its keeper in the transaction that
// takes the slot's lease, as primary.changed is with the primary's.
func (s *slots) taken(i int) func(taken, before store.Lease, holds []store.Hold, how string, took time.Duration) store.EventAppendParams {
	return func(taken, _ store.Lease, _ []store.Hold, how string, _ time.Duration) store.EventAppendParams {
		return s.n.newEvent("slot.taken", fmt.Sprintf("%s fires scheduler slot %d (epoch %d): %s", s.n.cfg.NodeID, i, taken.Epoch, how),
			map[string]any{"slot": i, "epoch": taken.Epoch})
	}
}

func (s *slots) deposed(i int, term lease.Term) {
	s.n.log.Info(fmt.Sprintf("leaving slot %d (epoch %d): %s", i, term.Epoch, term.Reason()))
	s.mu.Lock()
	t := s.terms[i]
	delete(s.terms, i)
	s.mu.Unlock()
	if t != nil {
		s.n.goFn(t.stop) // its scheduler ends with the term; the keeper does not wait for it
	}
}

// sync starts the scheduler of every slot held, or stops them all while the primary
// role is suspended.
func (s *slots) sync(ctx context.Context) {
	suspended, err := s.n.findHold(ctx, store.HoldPrimary)
	if err != nil {
		return // read again at the next check; nothing starts unread
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.terms {
		switch {
		case suspended != nil && t.sched != nil:
			t.stop()
		case suspended == nil && t.sched == nil:
			s.start(i, t)
		}
	}
}

// start runs slot i's scheduler under its epoch; the caller holds s.mu.
func (s *slots) start(i int, t *slotTerm) {
	n := s.n
	ctx, cancel := context.WithCancel(t.term.Context())
	t.cancel, t.done = cancel, make(chan struct{})
	t.sched = scheduler.New(scheduler.Params{Store: n.store, Log: n.log.With("component", "scheduler", "slot", i), Epoch: t.epoch,
		Lease: store.SlotLease(i), Slice: store.Slice{Slots: s.count, Slot: i}, Now: n.clock.Now,
		Observe: func([]store.FireResult, time.Time) { n.RunsQueued() }, Fired: n.metrics.Fired})
	sched, done := t.sched, t.done
	go func() {
		defer close(done)
		if err := sched.Run(ctx); err != nil {
			n.log.Warn(fmt.Sprintf("slot %d scheduler stopped", i), "err", err)
			if errors.Is(err, store.ErrFenced) {
				s.keepers[i].StepDown()
			}
		}
	}()
}

// stop ends the slot's scheduler and waits for it.
func (t *slotTerm) stop() {
	if t.sched == nil {
		return
	}
	t.cancel()
	<-t.done
	t.sched = nil
}

// wake tells every slot scheduler that jobs changed.
func (s *slots) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.terms {
		if t.sched != nil {
			t.sched.Wake()
		}
	}
}

// followSuspension applies the primary role's stored suspension to the slots this node
// fires, within a second of its change.
func (s *slots) followSuspension(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the keepers resign their slots, which stops their schedulers
		case <-t.C:
			s.sync(ctx)
		}
	}
}

// spread hands a slot over when this node holds more than its share: the slots divided
// by the eligible live nodes, rounded up.
func (s *slots) spread(ctx context.Context) {
	t := time.NewTicker(s.n.cfg.Scheduler.SlotCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mine := s.Held()
		if len(mine) <= 1 {
			continue
		}
		holding, eligible, err := s.holdings(ctx)
		if err != nil || len(eligible) == 0 {
			continue
		}
		share := (s.count + len(eligible) - 1) / len(eligible)
		if len(mine) <= share {
			continue
		}
		to := ""
		for _, id := range eligible {
			if id != s.n.cfg.NodeID && (to == "" || holding[id] < holding[to]) {
				to = id
			}
		}
		if to == "" || holding[to]+1 >= len(mine) {
			continue
		}
		i := mine[len(mine)-1]
		s.n.log.Info(fmt.Sprintf("handing slot %d over to %s: this node holds %d slots, its share is %d", i, to, len(mine), share))
		if err := s.keepers[i].Handover(ctx, to); err != nil && ctx.Err() == nil {
			s.n.log.Warn("slot handover failed", "slot", i, "to", to, "err", err)
		}
	}
}

// holdings counts the slots each node holds and lists the eligible live nodes.
func (s *slots) holdings(ctx context.Context) (map[string]int, []string, error) {
	holding := map[string]int{}
	for i := range s.count {
		l, err := s.n.store.LeaseGet(ctx, store.SlotLease(i))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
		if err == nil && l.ExpiresAt.After(l.Now) {
			holding[HolderNode(l.Holder)]++
		}
	}
	live, err := s.n.members.Live(ctx)
	if err != nil {
		return nil, nil, err
	}
	var eligible []string
	for _, nd := range live {
		if nd.Mode == ModePrimary || nd.Mode == ModeSuspended || nd.Mode == ModeStandby {
			eligible = append(eligible, nd.ID)
		}
	}
	return holding, eligible, nil
}
