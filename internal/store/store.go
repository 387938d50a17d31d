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
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
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

// QueueStats describes the runs waiting for a node.
type QueueStats struct {
	Queued int
	Oldest time.Time // creation of the oldest queued run; zero when none is queued
	Now    time.Time // the repository's clock as it was read
}

// PrimaryLease names the lease whose holder fires schedules and dispatches runs.
const PrimaryLease = "primary"

// Store is the repository. All methods are safe for concurrent use. Each method is one
// transaction: it either happens entirely or not at all.
type Store interface {
	Deliveries
	Auth
	Secrets
	Rules

	JobApply(ctx context.Context, p JobApplyParams) ([]JobApplyResult, error)
	JobGet(ctx context.Context, name string) (Job, error)
	JobList(ctx context.Context) ([]Job, error)
	JobDelete(ctx context.Context, p JobDeleteParams) error
	JobSetPaused(ctx context.Context, p JobSetPausedParams) (Job, error)

	// ScheduleList returns every active schedule (its job not paused, not done).
	ScheduleList(ctx context.Context) ([]ScheduleEntry, error)
	// ScheduleListDue returns active schedules by next fire time, one page at a time, so
	// that a scheduler keeps only what is due soon in memory and fires the earliest first.
	ScheduleListDue(ctx context.Context, p ScheduleListDueParams) ([]ScheduleEntry, error)
	// ScheduleListNew returns active schedules with no next fire time yet (new, changed or
	// resumed), one page at a time by id.
	ScheduleListNew(ctx context.Context, p ScheduleListNewParams) ([]ScheduleEntry, error)
	ScheduleInit(ctx context.Context, p ScheduleInitParams) ([]bool, error)
	OccurrenceFire(ctx context.Context, p OccurrenceFireParams) ([]FireResult, error)

	RunCreate(ctx context.Context, p RunCreateParams) (Run, error)
	// RunCreateBatch creates Count on-demand runs of one job in one transaction.
	RunCreateBatch(ctx context.Context, p RunCreateBatchParams) ([]Run, error)
	RunGet(ctx context.Context, id int64) (Run, error)
	RunList(ctx context.Context, p RunListParams) ([]Run, error)
	RunListDispatchable(ctx context.Context, p RunListDispatchableParams) ([]DispatchCandidate, error)
	RunAssign(ctx context.Context, p RunAssignParams) (int, error)
	RunListForNode(ctx context.Context, node string) ([]Run, error)
	RunStart(ctx context.Context, p RunStartParams) (Run, error)
	// RunStartBatch starts several assigned runs in one transaction; see its Params.
	RunStartBatch(ctx context.Context, p RunStartBatchParams) ([]Run, error)
	RunFinish(ctx context.Context, p RunFinishParams) (Run, error)
	// RunFinishBatch ends several attempts in one transaction; see its Params.
	RunFinishBatch(ctx context.Context, p RunFinishBatchParams) ([]error, error)
	RunCancel(ctx context.Context, p RunCancelParams) (Run, error)
	// RunRelease queues again the runs assigned to a node that it has not started, or
	// the attempts named, without spending them.
	RunRelease(ctx context.Context, p RunReleaseParams) ([]int64, error)
	// RunCounts counts the active runs (queued, assigned, running) by node and state.
	RunCounts(ctx context.Context) ([]RunCount, error)
	// RunLoad counts the runs assigned to or running on each node: what the dispatcher
	// weighs capacity against, without counting the queue.
	RunLoad(ctx context.Context) ([]RunCount, error)
	// RunQueueStats is the length of the queue and the age of its oldest run, read from
	// the queue's index (for the metrics, once per scrape).
	RunQueueStats(ctx context.Context) (QueueStats, error)

	Outputs

	LeaseAcquire(ctx context.Context, p LeaseAcquireParams) (Lease, error)
	LeaseRenew(ctx context.Context, p LeaseRenewParams) (Lease, error)
	LeaseResign(ctx context.Context, p LeaseResignParams) error
	LeaseGet(ctx context.Context, name string) (Lease, error)

	// NodeClaim makes p.Node.Holder the process of the node id: it records the row when
	// there is none or when its holder is p.Replace, and returns ErrClaimed otherwise.
	NodeClaim(ctx context.Context, p NodeClaimParams) error
	// NodeHeartbeat records a heartbeat of the node's claiming process; ErrClaimed when
	// another process claimed the id since.
	NodeHeartbeat(ctx context.Context, p NodeHeartbeatParams) error
	NodeList(ctx context.Context) ([]Node, error)
	// ClusterRead reads, in one statement, what the server-status table is made of:
	// the nodes, the active runs counted by node and state, every lease (the primary
	// and the scheduler slots) and the holds.
	ClusterRead(ctx context.Context) (ClusterView, error)
	// NodeLose declares a silent or dead node lost and re-queues its unfinished runs;
	// fenced. Its node.lost event is written in the same transaction.
	NodeLose(ctx context.Context, p NodeLoseParams) (NodeLoseResult, error)

	// HoldSet stores an operator hold (replacing one on the same target); HoldClear
	// removes it (ErrNotFound when there is none); HoldList lists them by target.
	// SettingGet reads a stored setting (ErrNotFound when unset); SettingSet stores one.
	SettingGet(ctx context.Context, key string) (string, error)
	SettingSet(ctx context.Context, key, value string, now time.Time) error

	HoldSet(ctx context.Context, h Hold) error
	HoldClear(ctx context.Context, target string) error
	HoldList(ctx context.Context) ([]Hold, error)

	// EventAppend records an event. Event ids commit in increasing order on every engine
	// (on PostgreSQL each event is inserted under a transaction-level lock, so a
	// sequence value taken later cannot commit before one taken earlier): a reader
	// that has seen id N never finds a smaller id committed afterwards. With Dedup, an
	// event of the same Dedup is recorded once (a second is dropped, not an error).
	EventAppend(ctx context.Context, p EventAppendParams) error
	EventList(ctx context.Context, p EventListParams) ([]Event, error)

	// ConfigVersion grows whenever jobs or schedules change, so schedulers know to reload.
	ConfigVersion(ctx context.Context) (int64, error)

	Close() error
}

// Job is a stored job definition.
type Job struct {
	ID        int64
	Name      string
	Spec      job.Spec
	Paused    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	Schedules []Schedule
}

// Schedule is one schedule expression of a job and its persisted firing state.
type Schedule struct {
	ID    int64
	JobID int64
	Index int    // position in the job's schedule list
	Key   string // identity: expression, zone and bounds; a changed key restarts the schedule
	Expr  string
	// NextFireAt is the next occurrence to fire; nil means the scheduler must compute it
	// from the current time (new, changed or resumed schedule).
	NextFireAt *time.Time
	Done       bool // no further occurrence
}

// ScheduleEntry is a schedule the scheduler should keep: its job is not paused.
type ScheduleEntry struct {
	Schedule
	Job  string
	Spec job.Spec
}

// ScheduleSpec is a schedule of a job being applied.
type ScheduleSpec struct {
	Key  string
	Expr string
}

// JobApplyParams creates or replaces jobs by name, all or none. Schedules whose Key is
// unchanged keep their firing state; the others start afresh.
type JobApplyParams struct {
	Jobs []JobDef
	Now  time.Time
	// Audit, when set, names who applied: each job gets a job.applied event saying so.
	Audit *Audit
}

// JobDeleteParams are the arguments of JobDelete.
type JobDeleteParams struct {
	Name string
	// Audit, when set, names who deleted: a job.deleted event says so.
	Audit *Audit
}

// JobDef is one job to apply: its validated spec and its schedules' identities.
type JobDef struct {
	Spec      job.Spec
	Schedules []ScheduleSpec
}

// JobApplyResult says what JobApply did.
type JobApplyResult struct {
	Job     Job
	Created bool
}

// JobSetPausedParams pauses or resumes a job. Resuming restarts its schedules from now, so
// the paused time counts as neither fired nor missed.
type JobSetPausedParams struct {
	Name   string
	Paused bool
	Now    time.Time
	// Audit, when set, names who asked: a job.paused or job.resumed event says so.
	Audit *Audit
}

// ScheduleListDueParams selects one page of active schedules whose next fire time is
// set, at most Until, and after the cursor (After, AfterID) in the order (next fire time,
// id) the page comes in.
type ScheduleListDueParams struct {
	Until   time.Time
	After   time.Time // zero: from the earliest
	AfterID int64
	Limit   int // 0: ScheduleListLimitDefault
	Slice   Slice
}

// Slice selects the schedules of one scheduler slot: those whose id mod Slots is Slot.
// The zero value (Slots 0 or 1) selects every schedule.
type Slice struct {
	Slots, Slot int
}

// SlotLease names the lease of scheduler slot i.
func SlotLease(i int) string { return fmt.Sprintf("scheduler/%d", i) }

// ScheduleListNewParams selects one page of active schedules with no next fire time,
// with ids above AfterID, by id.
type ScheduleListNewParams struct {
	Slice   Slice
	AfterID int64
	Limit   int // 0: ScheduleListLimitDefault
}

// ScheduleListLimitDefault is the page size of ScheduleListDue and ScheduleListNew
// when the caller gives none.
const ScheduleListLimitDefault = 1000

// ScheduleInitParams sets the next fire time of schedules whose NextFireAt is nil, in
// one transaction. The result says, item by item, whether it applied. Items name
// distinct schedules.
type ScheduleInitParams struct {
	Items []ScheduleInitItem
}

// ScheduleInitItem is the first next fire time of one schedule.
type ScheduleInitItem struct {
	ID         int64
	NextFireAt *time.Time // nil with Done: the schedule has no occurrence left
	Done       bool
}

// OccurrenceFireParams fires due occurrences of several schedules in one transaction.
type OccurrenceFireParams struct {
	Epoch int64 // the caller's epoch of Lease; 0 skips the check (single-node tests)
	// Lease is the lease whose epoch fences the firing: PrimaryLease ("") or the
	// scheduler slot's (SlotLease) the schedules belong to.
	Lease string
	Now   time.Time
	Items []FireItem
}

// FireItem advances one schedule from Expected to Next and records its occurrences.
type FireItem struct {
	ScheduleID int64
	Expected   time.Time  // the next_fire_at the caller planned from
	Next       *time.Time // new next_fire_at; nil when Done
	Done       bool
	Fire       []time.Time // occurrences that become runs
	Records    []Record    // occurrences recorded without a run (missed, skipped)
}

// Record is a stretch of occurrences that did not become runs.
type Record struct {
	State  RunState // RunMissed or RunSkipped
	First  time.Time
	Last   time.Time
	Count  int
	Reason string
}

// FireResult says what happened to one FireItem.
type FireResult struct {
	ScheduleID int64
	Applied    bool  // false: the schedule had moved on (someone else fired it) or is gone
	Runs       []Run // runs created, including overlap-skipped ones
}

// RunCreateParams creates an on-demand run. The job's overlap policy applies.
type RunCreateParams struct {
	Job     string
	Trigger string
	Now     time.Time
	// IdempotencyKey, when set, is stored with the run: a later RunCreate with the same
	// key creates nothing and returns that run (ErrConflict if it is another job's).
	IdempotencyKey string
	// Audit, when set, names who asked: a run.requested event says so.
	Audit *Audit
}

// RunListParams filters RunList. Runs come newest first.
type RunListParams struct {
	Job      string
	States   []RunState
	Node     string    // "": any node
	From     time.Time // zero: unbounded; else runs created at or after it
	Until    time.Time // zero: unbounded; else runs created at or before it
	BeforeID int64     // 0: from the newest
	Limit    int       // 0: 100
}

// RunListDispatchableParams lists queued runs that may be assigned now in the order they
// became due (not before, then id: oldest first), one page at a time.
type RunListDispatchableParams struct {
	Now   time.Time
	Limit int // 0: 1000
	// AfterNotBefore and AfterID continue a listing after the candidate that ended the
	// previous page (its Run.NotBefore and Run.ID); AfterID 0 starts from the first.
	AfterNotBefore time.Time
	AfterID        int64
	// SkipJobs leaves out the runs of these jobs: those the caller found it cannot place
	// now (a job with overlap "queue" that has a run out, tags no node with free capacity
	// has), so that their backlog never hides the runs behind it.
	SkipJobs []int64
}

// DispatchCandidate is a queued run with what the dispatcher needs to place it.
type DispatchCandidate struct {
	Run  Run
	Spec job.Spec
	// Active counts the job's other runs that are assigned or running; only for a job
	// with overlap "queue", which needs it (0 for the others).
	Active int
}

// RunAssignParams assigns queued runs to nodes; fenced by Epoch.
type RunAssignParams struct {
	Epoch       int64
	Now         time.Time
	Assignments []Assignment
	// Start makes the assignment the attempt's start as well: the runs become running at
	// once (started_at Now), and the node's worker executes what it is given without
	// writing again. The attempt counts as started from here: a lost node's runs spend it,
	// and only the node's own process hands back what it had not begun (RunRelease with
	// Runs). Without Start the runs are assigned, and the worker starts them (RunStart).
	Start bool
}

// Assignment gives one queued run to a node with a fresh attempt token. A node whose
// row shows it stopping, stopped or lost is given nothing: its assignments are skipped
// and the runs stay queued.
type Assignment struct {
	RunID int64
	Node  string
	Token string
}

// RunStartParams marks an assigned run as running on its node.
type RunStartParams struct {
	RunID int64
	Token string
	Now   time.Time
}

// RunFinishParams ends an attempt. With RetryAt set and attempts left, the run is queued
// again for its next attempt instead of ending.
type RunFinishParams struct {
	RunID    int64
	Token    string
	Now      time.Time
	State    RunState // succeeded, failed or canceled
	ExitCode *int
	Reason   string
	Stdout   []byte
	Stderr   []byte
	Outputs  []Output
	RetryAt  *time.Time
}

// RunCancelParams cancels a run: a queued or assigned run ends at once; a running one is
// asked to stop and ends when its worker reports.
type RunCancelParams struct {
	ID     int64
	Now    time.Time
	Reason string
	// Audit, when set, names who asked: a run.cancel_requested event says so.
	Audit *Audit
}

// RunReleaseParams gives back the runs assigned to Node and not started there, so that
// they go to another node without spending an attempt: a stopping node releases its own
// (Epoch 0); the primary releases those of a node that stopped (fenced by Epoch).
//
// With Runs, exactly those attempts are given back (each only while it is still the
// run's current attempt on Node, assigned or running): the runs the node's process was
// given, at assignment's start, and never began. With Holder, only while Holder is the
// process that claims Node: a process that lost its node id to another hands back
// nothing, since the new one may have begun them.
type RunReleaseParams struct {
	Epoch  int64
	Node   string
	Holder string
	Runs   []RunToken
	Now    time.Time
	Reason string
}

// RunCount is how many active runs one node has in one state ("" node: not assigned).
type RunCount struct {
	Node  string
	State RunState
	Count int
}

// LeaseAcquireParams takes a lease if it is free or expired at Now, or if its holder is
// TakeFrom (a holder whose process is known to be dead). A lease resigned to a successor
// is reserved for that node (Node) for one TTL.
type LeaseAcquireParams struct {
	Name     string
	Holder   string
	Node     string
	TakeFrom string
	TTL      time.Duration
	Now      time.Time
}

// LeaseRenewParams extends a lease still held by Holder at Epoch.
type LeaseRenewParams struct {
	Name   string
	Holder string
	Epoch  int64
	TTL    time.Duration
	Now    time.Time
}

// LeaseResignParams expires a lease held by Holder at Epoch, keeping the epoch. With a
// Successor, only that node may take the lease during the next TTL.
type LeaseResignParams struct {
	Name      string
	Holder    string
	Epoch     int64
	Successor string
	TTL       time.Duration
	Now       time.Time
}

// Lease is a named lease. Epoch grows by one on every change of holder and never resets.
// ClusterView is what ClusterRead returns.
type ClusterView struct {
	Nodes  []Node     // by id
	Counts []RunCount // as RunCounts
	Leases []Lease    // by name, each with the repository's clock in Now
	Holds  []Hold     // by target
}

// Lease returns the lease named and whether there is one.
func (v ClusterView) Lease(name string) (Lease, bool) {
	for _, l := range v.Leases {
		if l.Name == name {
			return l, true
		}
	}
	return Lease{}, false
}

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

// NodeLoseParams declares Node lost if it has not sent a heartbeat for Silence (judged
// by the repository's clock), or, with Dead, at once if the row is still claimed by Dead:
// the holder whose liveness lock was found free (its process is gone).
type NodeLoseParams struct {
	Epoch   int64
	Node    string
	Silence time.Duration
	Dead    string
	Now     time.Time
	// OutputCopies is the cluster's copy count for outputs whose job set none (0: 2),
	// against which the lost node's outputs are judged under-replicated.
	OutputCopies int
	// By is the node declaring the loss (the primary) and Why why, for the node.lost
	// event NodeLose records in its transaction.
	By  string
	Why string
}

// NodeClaimParams claims Node.ID for the process Node.Holder, replacing the claim of
// Replace (a process found dead, or "" for a node id nobody claimed).
type NodeClaimParams struct {
	Node    Node
	Replace string
	Now     time.Time
}

// Settings keys.
const (
	SettingDispatchAlgorithm = "dispatch.algorithm" // the cluster's load-balancing algorithm
	SettingNodeWeightPrefix  = "node.weight/"       // + node id: its weight as an operator set it
	SettingSchedulerSlots    = "scheduler.slots"    // how many scheduler slots share firing
)

// Hold kinds and the target of the primary role's suspension.
const (
	HoldSuspend = "suspend" // the cluster's primary role fires and dispatches nothing
	HoldStandby = "standby" // the node Target does not take the primary role
	HoldPrimary = "primary" // the Target of HoldSuspend
)

// Hold is an operator hold, stored so that it survives failover and restarts.
type Hold struct {
	Target string // HoldPrimary, or a node id
	Kind   string
	By     string // who set it: the client's address and the node that took the request
	At     time.Time
}

// NodeLoseResult says what NodeLose did.
type NodeLoseResult struct {
	Lost     bool    // false: the node is not silent (any more) or already lost
	Requeued []int64 // runs queued again for their next attempt
	Failed   []int64 // runs that had no attempt left
	// Outputs the node held a verified copy of, now below their copy count:
	// Underreplicated still have a holder on a node that is not lost or stopped,
	// OutputsLost have none.
	Underreplicated []OutputRef
	OutputsLost     []OutputRef
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

// NodeHeartbeatParams records a node's liveness and load.
type NodeHeartbeatParams struct {
	Node Node
	Now  time.Time
}

// EventAppendParams records one event.
type EventAppendParams struct {
	Dedup   string // "": none
	Type    string
	Node    string
	Message string
	Data    map[string]any
	Now     time.Time
}

// EventListParams filters EventList. Events come newest first; with Follow, oldest
// first from the one after After (what a cursor follows).
type EventListParams struct {
	Type   string
	Follow bool
	After  int64
	Limit  int
}
