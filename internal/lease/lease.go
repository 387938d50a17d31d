package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Params configures a Keeper.
type Params struct {
	Store store.Leases
	// Name is the lease kept: k.p.Name (the default) or a scheduler slot's.
	Name string
	// Liveness, if set, is the crash fast path: a standby that finds the holder's
	// liveness lock free takes the lease over without waiting for it to expire.
	Liveness store.Liveness
	Log      *slog.Logger
	Holder   string // this process: node id and incarnation
	Node     string // this node's id
	Renew    time.Duration
	TTL      time.Duration
	Margin   time.Duration
	// Poll is how often a standby looks at the lease; default Renew/5.
	Poll time.Duration
	Now  func() time.Time // default time.Now; must carry a monotonic reading
	// Eligible reports whether this node may take the role now (not held, not a worker,
	// not stopping). Nil: always.
	Eligible func() bool
	// Rank returns how many live, eligible nodes come before this one in takeover order
	// (priority, then id). This node waits Rank × RankStep before taking a free lease, so
	// the best standby takes over first. Nil: 0.
	Rank func(ctx context.Context) int
	// RankStep is how long each better-ranked standby is given to take a free lease
	// before the next one tries; default four polls. It only costs time when a better
	// standby is alive but slow: a dead one is not counted in Rank.
	RankStep time.Duration
	// Successor names the node a stopping primary hands the lease to ("" for none).
	Successor func(ctx context.Context) string
	// Took, if set, is told before Elected how long the takeover took: from this node
	// first seeing the lease free (expired, resigned, or its holder's process dead) to
	// holding it. A lease this process still held, or was handed, counts 0.
	Took func(time.Duration)
	// Event, if set, is the event recorded in the transaction that begins a term (see
	// store.LeaseAcquireParams.Event), told also how the term began and how long the
	// takeover took (as Took is). It must only compute.
	Event func(taken, before store.Lease, holds []store.Hold, how string, took time.Duration) store.EventAppendParams
	// Resigned, if set, is the event recorded in the transaction that resigns the lease
	// (a handover, a stop: see store.LeaseResignParams.Events), given the term and why it
	// ends. Term.EndRecorded tells Deposed whether it was. It must only compute.
	Resigned func(t Term, reason string) store.EventAppendParams
	// Elected is handed each new term as it begins; the term's context ends when the
	// term does. It runs on the keeper's goroutine and must not block: the role is
	// trusted for TTL − Margin from the acquire, and renewing it is this goroutine's job.
	Elected func(Term)
	// Deposed is told when a term has ended (its context is already done and Ended
	// says why); it must not block either.
	Deposed func(Term)
}

// Keeper acquires, renews and resigns the primary lease for one node. Its state is owned
// by the goroutine running Run; other goroutines talk to it through channels.
type Keeper struct {
	p         Params
	epoch     int64
	term      Term                    // the current term (zero when not holding)
	end       context.CancelCauseFunc // ends term
	trust     time.Time               // monotonic deadline of the role
	lastRenew time.Time               // start of the last renewal attempt
	free      time.Time               // when the lease was first seen free (for the rank delay); zero: not free
	rank      int
	kick      chan struct{}
	wake      chan struct{}
	resign    chan resignReq
}

type resignReq struct {
	successor string
	done      chan error
}

// New returns a keeper; call Run.
func New(p Params) *Keeper {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Poll <= 0 {
		p.Poll = max(p.Renew/5, time.Millisecond)
	}
	if p.RankStep <= 0 {
		p.RankStep = 4 * p.Poll
	}
	if p.Name == "" {
		p.Name = store.PrimaryLease
	}
	return &Keeper{p: p, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1), resign: make(chan resignReq)}
}

// StepDown gives up the role at once (a fenced write showed it is lost). Never blocks.
func (k *Keeper) StepDown() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Wake asks a standby to look at the lease now (the primary resigned). Never blocks.
func (k *Keeper) Wake() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// ErrNotPrimary is returned by Handover when this node does not hold the lease.
var ErrNotPrimary = errors.New("this node is not the primary")

// Handover resigns the lease to successor (a planned switchover): only that node may
// take it during the next TTL; after that it is free to the best standby, this node
// included.
func (k *Keeper) Handover(ctx context.Context, successor string) error {
	r := resignReq{successor: successor, done: make(chan error, 1)}
	select {
	case k.resign <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run keeps the lease until ctx ends, then resigns it if held (to the successor, if any).
func (k *Keeper) Run(ctx context.Context) error {
	tick := time.NewTicker(k.p.Poll)
	defer tick.Stop()
	for {
		k.step(ctx)
		select {
		case <-ctx.Done():
			k.stop(context.WithoutCancel(ctx))
			return nil
		case <-tick.C:
		case <-k.wake:
		case r := <-k.resign:
			r.done <- k.handover(ctx, r.successor)
		case <-k.kick:
			if k.epoch != 0 {
				k.depose("a fenced write showed another node holds the lease")
			}
		}
	}
}

func (k *Keeper) step(ctx context.Context) {
	if k.epoch != 0 {
		if now := k.p.Now(); now.Sub(k.lastRenew) >= k.p.Renew || !now.Before(k.trust) {
			k.renew(ctx)
		}
		return
	}
	if k.p.Eligible != nil && !k.p.Eligible() {
		k.free = time.Time{}
		return
	}
	k.consider(ctx)
}

func (k *Keeper) renew(ctx context.Context) {
	start := k.p.Now()
	if !start.Before(k.trust) {
		k.depose(fmt.Sprintf("renew failed for %s", start.Sub(k.trust.Add(-k.p.TTL+k.p.Margin)).Round(time.Millisecond)))
		return
	}
	k.lastRenew = start
	rctx, cancel := context.WithDeadline(ctx, k.trust)
	_, err := k.p.Store.LeaseRenew(rctx, store.LeaseRenewParams{Name: k.p.Name, Holder: k.p.Holder, Epoch: k.epoch, TTL: k.p.TTL})
	cancel()
	switch {
	case err == nil:
		// Trust runs from the START of the renewal: a slow one that succeeds late must not
		// extend it beyond what the repository granted.
		k.trust = start.Add(k.p.TTL - k.p.Margin)
	case errors.Is(err, store.ErrFenced):
		k.depose("lease taken over by another node")
	case ctx.Err() == nil:
		k.p.Log.Warn("lease renew failed", "epoch", k.epoch, "err", err)
	}
}

// consider looks at the lease as a standby and takes it when it may.
func (k *Keeper) consider(ctx context.Context) {
	l, err := k.p.Store.LeaseGet(ctx, k.p.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		k.acquire(ctx, store.Lease{}, "", "no primary before")
		return
	case err != nil:
		if ctx.Err() == nil {
			k.p.Log.Warn("cannot read the lease", "err", err)
		}
		return
	}
	live := l.ExpiresAt.After(l.Now)
	takeFrom, how := "", fmt.Sprintf("lease held by %s expired or was resigned", l.Holder)
	switch {
	case l.Holder == k.p.Holder && live:
		// Still ours (a renewal failed, the lease did not expire): take it straight back.
		// A lease this process resigned or let lapse is free like any other.
		k.acquire(ctx, l, "", "this process still held the lease")
		return
	case live && k.p.Liveness != nil:
		dead, err := k.p.Liveness.LivenessDead(ctx, l.Holder)
		if err != nil || !dead {
			k.free = time.Time{}
			return
		}
		takeFrom, how = l.Holder, fmt.Sprintf("the process of %s died (its liveness lock is free)", l.Holder)
	case live:
		k.free = time.Time{}
		return
	case l.Successor != "" && l.Now.Before(l.ExpiresAt.Add(k.p.TTL)):
		if l.Successor != k.p.Node {
			return // reserved for the successor of a planned handover
		}
		k.acquire(ctx, l, "", fmt.Sprintf("%s handed the lease over to this node", l.Holder))
		return
	}
	// Free: the best standby takes it first; the others wait their turn.
	now := k.p.Now()
	if k.free.IsZero() {
		k.free = now
		k.rank = 0
		if k.p.Rank != nil {
			k.rank = k.p.Rank(ctx)
		}
	}
	if now.Sub(k.free) < time.Duration(k.rank)*k.p.RankStep {
		return
	}
	k.acquire(ctx, l, takeFrom, how)
}

func (k *Keeper) acquire(ctx context.Context, prev store.Lease, takeFrom, how string) {
	start := k.p.Now()
	p := store.LeaseAcquireParams{Name: k.p.Name, Holder: k.p.Holder, Node: k.p.Node, TakeFrom: takeFrom, TTL: k.p.TTL}
	if k.p.Event != nil {
		p.Event = func(taken, before store.Lease, holds []store.Hold) store.EventAppendParams {
			took := time.Duration(0)
			if !k.free.IsZero() {
				took = k.p.Now().Sub(k.free)
			}
			return k.p.Event(taken, before, holds, how, took)
		}
	}
	l, err := k.p.Store.LeaseAcquire(ctx, p)
	if err != nil {
		if !errors.Is(err, store.ErrLeaseHeld) && ctx.Err() == nil {
			k.p.Log.Warn("lease acquire failed", "err", err)
		}
		return
	}
	took := time.Duration(0)
	if !k.free.IsZero() {
		took = k.p.Now().Sub(k.free)
	}
	k.epoch, k.trust, k.lastRenew, k.free = l.Epoch, start.Add(k.p.TTL-k.p.Margin), start, time.Time{}
	if k.p.Took != nil {
		k.p.Took(took)
	}
	ctx, end := context.WithCancelCause(context.Background())
	k.term, k.end = Term{Epoch: l.Epoch, Previous: prev, How: how, ctx: ctx}, end
	if k.p.Elected != nil {
		k.p.Elected(k.term)
	}
}

func (k *Keeper) depose(reason string) { k.deposeRecorded(reason, false) }

// deposeRecorded ends the term; recorded: its end's event was written with the
// resignation.
func (k *Keeper) deposeRecorded(reason string, recorded bool) {
	t := k.term
	t.recorded = recorded
	k.epoch, k.term = 0, Term{}
	if k.end != nil {
		k.end(&termEnd{reason: reason})
		k.end = nil
	}
	if k.p.Deposed != nil {
		k.p.Deposed(t)
	}
}

func (k *Keeper) handover(ctx context.Context, successor string) error {
	if k.epoch == 0 {
		return ErrNotPrimary
	}
	reason := "switching over to " + successor
	err := k.p.Store.LeaseResign(ctx, k.resignParams(successor, reason))
	if errors.Is(err, store.ErrFenced) {
		k.depose("lease taken over by another node")
	}
	if err != nil {
		return fmt.Errorf("hand the lease over to %s: %w", successor, err)
	}
	k.deposeRecorded(reason, k.p.Resigned != nil)
	return nil
}

// resignParams resigns the current term's lease to successor, with its Resigned event.
func (k *Keeper) resignParams(successor, reason string) store.LeaseResignParams {
	p := store.LeaseResignParams{Name: k.p.Name, Holder: k.p.Holder, Epoch: k.epoch, Successor: successor, TTL: k.p.TTL}
	if k.p.Resigned != nil {
		p.Events = []store.EventAppendParams{k.p.Resigned(k.term, reason)}
	}
	return p
}

// stop resigns the lease at once so a standby takes over without waiting for the TTL.
func (k *Keeper) stop(ctx context.Context) {
	if k.epoch == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, k.p.TTL)
	defer cancel()
	successor := ""
	if k.p.Successor != nil {
		successor = k.p.Successor(ctx)
	}
	reason := "stopping: lease resigned"
	err := k.p.Store.LeaseResign(ctx, k.resignParams(successor, reason))
	switch {
	case errors.Is(err, store.ErrFenced):
		k.depose("stopping: the lease was already taken over by another node")
	case err != nil:
		k.p.Log.Warn("lease resign failed; standbys wait for it to expire", "err", err)
		k.depose(reason)
	default:
		k.deposeRecorded(reason, k.p.Resigned != nil)
	}
}
