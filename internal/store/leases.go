package store

import (
	"context"
	"time"
)

// Leases is the concern of named, fenced leases: the primary's and the scheduler
// slots'. Every judgement of expiry is made by the repository's clock; callers pass no
// time. The epoch of a lease grows by one on every change of holder and never resets.
type Leases interface {
	// LeaseAcquire takes the lease when it is free, expired, or held by p.TakeFrom;
	// ErrLeaseHeld otherwise (the current lease is returned with it).
	LeaseAcquire(ctx context.Context, p LeaseAcquireParams) (Lease, error)
	// LeaseRenew extends the lease; ErrFenced when p.Holder no longer holds it at p.Epoch.
	LeaseRenew(ctx context.Context, p LeaseRenewParams) (Lease, error)
	// LeaseResign expires the lease now, keeping its epoch, and records p.Events in the
	// same transaction; ErrFenced when p.Holder no longer holds it at p.Epoch (then
	// nothing, not even the events, is recorded).
	LeaseResign(ctx context.Context, p LeaseResignParams) error
	// LeaseGet reads a lease (ErrNotFound when it was never taken).
	LeaseGet(ctx context.Context, name string) (Lease, error)
}

// PrimaryLease names the lease whose holder fires schedules and dispatches runs.
const PrimaryLease = "primary"

// LeaseAcquireParams takes a lease if it is free or expired (by the repository's clock), or if its holder is
// TakeFrom (a holder whose process is known to be dead). A lease resigned to a successor
// is reserved for that node (Node) for one TTL.
type LeaseAcquireParams struct {
	Name     string
	Holder   string
	Node     string
	TakeFrom string
	TTL      time.Duration
	// Event, if set, is the event recorded in the transaction that takes the lease (the
	// primary's primary.changed), so a term never begins unrecorded. It is given the
	// lease as taken, the lease as it was before (zero when there was none) and the
	// operator holds as they are in that transaction; it must only compute.
	Event func(taken, before Lease, holds []Hold) EventAppendParams
}

// LeaseRenewParams extends a lease still held by Holder at Epoch.
type LeaseRenewParams struct {
	Name   string
	Holder string
	Epoch  int64
	TTL    time.Duration
}

// LeaseResignParams expires a lease held by Holder at Epoch, keeping the epoch. With a
// Successor, only that node may take the lease during the next TTL.
type LeaseResignParams struct {
	Name      string
	Holder    string
	Epoch     int64
	Successor string
	TTL       time.Duration
	// Events are recorded with the resignation (the primary's primary.stepped_down).
	Events []EventAppendParams
}

// Lease is a named lease. Epoch grows by one on every change of holder and never resets.
type Lease struct {
	Name      string
	Holder    string
	Epoch     int64
	ExpiresAt time.Time
	Successor string // node the resigned lease is reserved for, if any
	// Now is the repository's clock when the lease was read: compare ExpiresAt with it,
	// never with a node's own clock.
	Now time.Time
}

// Liveness is implemented by engines that can tell at once that a lease holder's process
// died: the holder holds a lock the operating system or the database frees with it (a
// file lock on one host, a session advisory lock on PostgreSQL).
type Liveness interface {
	// LivenessHold takes holder's lock until release is called or the process dies.
	LivenessHold(ctx context.Context, holder string) (release func(), err error)
	// LivenessDead reports whether holder's lock is free: its process is gone.
	LivenessDead(ctx context.Context, holder string) (bool, error)
}
