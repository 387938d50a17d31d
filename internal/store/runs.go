package store

import (
	"context"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Runs is the concern of runs and their attempts: creating them, the dispatcher's
// assignment (fenced by the primary's epoch), the worker's start and finish (accepted
// only with the attempt's current token) and the counts the dispatcher and the metrics
// read.
type Runs interface {
	// RunCreate queues an on-demand run of a job (ErrNotFound when there is no such
	// job). With an IdempotencyKey, a second create with the same key returns the first
	// run and changes nothing.
	RunCreate(ctx context.Context, p RunCreateParams) (Run, error)
	// RunCreateBatch creates Count on-demand runs of one job in one transaction.
	RunCreateBatch(ctx context.Context, p RunCreateBatchParams) ([]Run, error)
	// RunGet returns one run (ErrNotFound).
	RunGet(ctx context.Context, id int64) (Run, error)
	// RunList lists runs, newest first; see RunListParams.
	RunList(ctx context.Context, p RunListParams) ([]Run, error)
	// RunListDispatchable returns the queued runs the dispatcher may assign, with what
	// it needs to place them. It is several reads, not one snapshot: RunAssign checks
	// again what it changes.
	RunListDispatchable(ctx context.Context, p RunListDispatchableParams) ([]DispatchCandidate, error)
	// RunAssign assigns queued runs to nodes and returns how many it assigned; ErrFenced
	// when p.Epoch is not the primary's. A run no longer queued is skipped.
	RunAssign(ctx context.Context, p RunAssignParams) (int, error)
	// RunListForNode returns the runs assigned to or running on a node.
	RunListForNode(ctx context.Context, node string) ([]Run, error)
	// RunStartBatch starts several assigned runs in one transaction; see its Params.
	RunStartBatch(ctx context.Context, p RunStartBatchParams) ([]Run, error)
	// RunFinishBatch ends several attempts in one transaction; see its Params.
	RunFinishBatch(ctx context.Context, p RunFinishBatchParams) ([]error, error)
	// RunCancel cancels a queued, assigned or running run (ErrNotFound; ErrConflict when
	// it has ended).
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
}

// RunStart marks one assigned run as running: RunStartBatch of one. ErrStale when its
// attempt was taken back or given to someone else.
func RunStart(ctx context.Context, st Runs, p RunStartParams) (Run, error) {
	runs, err := st.RunStartBatch(ctx, RunStartBatchParams{Now: p.Now, Runs: []RunToken{{ID: p.RunID, Token: p.Token}}})
	if err != nil {
		return Run{}, fmt.Errorf("start run %d: %w", p.RunID, err)
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("start run %d: %w", p.RunID, ErrStale)
	}
	return runs[0], nil
}

// RunFinish ends one attempt (RunFinishBatch of one) and returns the run as it is then.
// ErrStale when the token is not the run's current one or the run is not running.
func RunFinish(ctx context.Context, st Runs, p RunFinishParams) (Run, error) {
	errs, err := st.RunFinishBatch(ctx, RunFinishBatchParams{Items: []RunFinishParams{p}})
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return Run{}, fmt.Errorf("finish run %d: %w", p.RunID, err)
	}
	return st.RunGet(ctx, p.RunID)
}

// QueueStats describes the runs waiting for a node.
type QueueStats struct {
	Queued int
	Oldest time.Time // creation of the oldest queued run; zero when none is queued
	Now    time.Time // the repository's clock as it was read
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

// RunState is where a run is in its life.
type RunState string

// Final reports whether no further change can happen to a run in this state.
func (s RunState) Final() bool {
	switch s {
	case RunSucceeded, RunFailed, RunCanceled, RunSkipped, RunMissed:
		return true
	}
	return false
}

// Valid reports whether s is a known state.
func (s RunState) Valid() bool {
	switch s {
	case RunQueued, RunAssigned, RunRunning:
		return true
	}
	return s.Final()
}

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Run is one execution of a job, scheduled or on demand, with its attempts.
type Run struct {
	ID          int64
	JobID       int64
	Job         string
	ScheduleID  int64      // 0 for on-demand runs
	ScheduledAt *time.Time // nil for on-demand runs
	// ScheduledUntil and Occurrences describe a record covering a stretch of occurrences
	// (missed or blacked out): from ScheduledAt to ScheduledUntil, Occurrences of them.
	ScheduledUntil  *time.Time
	Occurrences     int
	Trigger         string
	State           RunState
	Attempt         int // 0 until first assigned
	MaxAttempts     int
	Token           string
	Node            string
	Epoch           int64 // epoch of the primary that last assigned it
	CreatedAt       time.Time
	NotBefore       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	ExitCode        *int
	Reason          string
	CancelRequested bool
	Stdout          []byte // RunGet only
	Stderr          []byte // RunGet only
}

// RunCreateBatchParams creates Count on-demand runs of Job, as Count calls of RunCreate
// one after another would (the job's overlap policy applies to each in turn: with
// "forbid" at most the first is queued, with "replace" each replaces the one before),
// but in one transaction.
type RunCreateBatchParams struct {
	Job     string
	Count   int
	Trigger string // "" : manual
	Now     time.Time
}

// RunStartBatchParams marks several assigned runs as running, each only if it is still
// assigned under the given token; the others are left as they are (their attempt was
// taken back or given to someone else) and are missing from the result.
type RunStartBatchParams struct {
	Now  time.Time
	Runs []RunToken
}

// RunToken names one attempt: a run and the token it was assigned with.
type RunToken struct {
	ID    int64
	Token string
}

// RunFinishBatchParams ends several attempts, each as RunFinish would: an item whose
// token is not the run's current one, or whose run is not running, changes nothing and
// its result is an error wrapping ErrStale. The results come in the order of Items.
type RunFinishBatchParams struct {
	Items []RunFinishParams
}

// Run states. The last five are final.
const (
	RunQueued    RunState = "queued"
	RunAssigned  RunState = "assigned"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCanceled  RunState = "canceled"
	RunSkipped   RunState = "skipped"
	RunMissed    RunState = "missed"
)
