package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Params configures a Keeper.
type Params struct {
	Store  store.Store
	Log    *slog.Logger
	Holder string
	Renew  time.Duration
	TTL    time.Duration
	Margin time.Duration
	Now    func() time.Time // default time.Now; must carry a monotonic reading
	// Elected is called when this node becomes primary; the role lasts until Deposed.
	Elected func(epoch int64, previous store.Lease)
	// Deposed is called when this node stops being primary, with the reason.
	Deposed func(epoch int64, reason string)
}

// Keeper acquires, renews and resigns the primary lease for one node.
type Keeper struct {
	p     Params
	epoch int64         // 0 while not primary
	trust time.Time     // monotonic deadline of the role
	kick  chan struct{} // step down now
	wake  chan struct{} // try to acquire now
}

// New returns a keeper; call Run.
func New(p Params) *Keeper {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Keeper{p: p, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// Wake asks a standby to try the lease now (the primary resigned). It never blocks.
func (k *Keeper) Wake() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// StepDown gives up the role at once (a fenced write showed it is lost).
func (k *Keeper) StepDown() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Run keeps the lease until ctx ends, then resigns it if held.
func (k *Keeper) Run(ctx context.Context) error {
	tick := time.NewTicker(k.p.Renew)
	defer tick.Stop()
	for {
		k.step(ctx)
		select {
		case <-ctx.Done():
			k.resign(context.WithoutCancel(ctx))
			return nil
		case <-tick.C:
		case <-k.wake:
		case <-k.kick:
			if k.epoch != 0 {
				k.depose("a fenced write showed another node holds the lease")
			}
		}
	}
}

func (k *Keeper) step(ctx context.Context) {
	if k.epoch == 0 {
		k.tryAcquire(ctx)
		return
	}
	start := k.p.Now()
	if !start.Before(k.trust) {
		k.depose("renew failed for " + start.Sub(k.trust.Add(-k.p.TTL+k.p.Margin)).Round(time.Millisecond).String())
		return
	}
	rctx, cancel := context.WithDeadline(ctx, k.trust)
	_, err := k.p.Store.LeaseRenew(rctx, store.LeaseRenewParams{Name: store.PrimaryLease, Holder: k.p.Holder, Epoch: k.epoch, TTL: k.p.TTL, Now: start})
	cancel()
	switch {
	case err == nil:
		k.trust = start.Add(k.p.TTL - k.p.Margin)
	case errors.Is(err, store.ErrFenced):
		k.depose("lease taken over by another node")
	case ctx.Err() == nil:
		k.p.Log.Warn("lease renew failed", "epoch", k.epoch, "err", err)
	}
}

func (k *Keeper) tryAcquire(ctx context.Context) {
	prev, _ := k.p.Store.LeaseGet(ctx, store.PrimaryLease)
	start := k.p.Now()
	l, err := k.p.Store.LeaseAcquire(ctx, store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: k.p.Holder, TTL: k.p.TTL, Now: start})
	if err != nil {
		if !errors.Is(err, store.ErrLeaseHeld) && ctx.Err() == nil {
			k.p.Log.Warn("lease acquire failed", "err", err)
		}
		return
	}
	k.epoch, k.trust = l.Epoch, start.Add(k.p.TTL-k.p.Margin)
	if k.p.Elected != nil {
		k.p.Elected(l.Epoch, prev)
	}
}

func (k *Keeper) depose(reason string) {
	epoch := k.epoch
	k.epoch = 0
	if k.p.Deposed != nil {
		k.p.Deposed(epoch, reason)
	}
}

// resign expires the lease at once so a standby takes over without waiting for the TTL.
func (k *Keeper) resign(ctx context.Context) {
	if k.epoch == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, k.p.TTL)
	defer cancel()
	err := k.p.Store.LeaseResign(ctx, store.LeaseResignParams{Name: store.PrimaryLease, Holder: k.p.Holder, Epoch: k.epoch, Now: k.p.Now()})
	if err != nil {
		k.p.Log.Warn("lease resign failed; standbys wait for it to expire", "err", err)
	}
	k.depose("stopping: lease resigned")
}
