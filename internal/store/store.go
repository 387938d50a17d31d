// Package store is tandem's repository: the domain types every node shares and the Store
// interface through which they are read and written. The repository is the single source of
// truth; no node keeps state another node needs and cannot read from here.
//
// Engines (storesqlite, later storepg) implement Store with identical behaviour, proven by
// the conformance suite in storetest. Invariants every engine keeps:
//   - An occurrence (schedule, scheduled time) is inserted at most once, in the same
//     transaction that advances the schedule's next_fire_at from the value the caller read
//     (a compare-and-set), so a time is fired exactly once however many schedulers try.
//   - Role-dependent writes (firing, assigning) carry the caller's lease epoch; when it is not
//     the current epoch of the primary lease the write changes nothing and returns ErrFenced.
//   - A worker's updates to a run are accepted only with the run's current attempt token.
//   - Times are UTC instants; every writing transaction takes the write lock up front.
package store

import (
	"context"
	"errors"
)

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrFenced    = errors.New("fenced: lease epoch is not current")
	ErrStale     = errors.New("stale attempt token")
	ErrLeaseHeld = errors.New("lease held by another node")
	// ErrClaimed: the node id belongs to another process (another incarnation claimed it).
	ErrClaimed = errors.New("node id claimed by another process")
)

// Wake-up topics an engine with a Notifier pushes to every node. They are hints that
// make things faster; correctness never depends on them (every consumer also polls).
const (
	TopicRuns     = "runs"     // runs were queued (dispatcher)
	TopicAssigned = "assigned" // runs were assigned or asked to stop; payload: node ids, comma separated
	TopicLease    = "lease"    // the primary lease was resigned (standbys)
	TopicConfig   = "config"   // jobs changed (scheduler)
	// TopicDeliveries: delivery records became due (deliverers); payload: the node
	// offered them first, or "".
	TopicDeliveries = "deliveries"
)

// Wakeup is one pushed hint.
type Wakeup struct {
	Topic   string
	Payload string
}

// Notifier is implemented by engines that push wake-ups between nodes (PostgreSQL's
// LISTEN/NOTIFY). Listen calls fn for each wake-up until ctx ends, reconnecting by itself
// when its connection drops; it returns when ctx ends.
type Notifier interface {
	Listen(ctx context.Context, fn func(Wakeup)) error
}

// Analyzer is implemented by engines whose planner needs fresh statistics. The primary
// calls Analyze every few seconds; it refreshes the statistics of the tables that changed
// much since they were last analyzed (a fresh repository whose queue grows by thousands
// of runs a second would otherwise be planned for an empty table until the engine's own
// maintenance comes round), and is cheap when nothing did.
type Analyzer interface {
	Analyze(ctx context.Context) (analyzed []string, err error)
}

// Store is the repository: every concern an engine implements. All methods are safe for
// concurrent use. Each method is one transaction, unless its doc says otherwise: it
// either happens entirely or not at all. Consumers take only the concerns they use (the
// scheduler Schedules, the dispatcher Runs, the lease keeper Leases, …), so a reader
// sees in a Params what a component may touch.
//
// Errors: a method returns the sentinel errors its doc names, wrapped with what it was
// doing (test them with errors.Is); any other error is the engine's (a lost connection,
// a full disk) and says what failed.
type Store interface {
	Jobs
	Schedules
	Runs
	Outputs
	Leases
	Members
	Settings
	Events
	Deliveries
	Rules
	Auth
	Secrets

	Close() error
}
