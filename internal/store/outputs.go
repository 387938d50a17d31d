package store

import (
	"context"
	"time"
)

// Outputs records the output files of runs and which nodes hold a copy of each. A run's
// outputs are recorded, with the producer as their first verified holder, in the
// transaction that finishes its attempt (RunFinish, RunFinishBatch). Other nodes then
// claim a slot (OutputClaim), copy and check the file, and record themselves
// (OutputHolderAdd); NodeLose marks the copies of a lost node as lost. An output "needs
// copies" from its recording until a copier found it had enough (OutputHolderAdd with
// its target reached, or OutputSettle), and again whenever a holder goes.
type Outputs interface {
	// OutputList returns the outputs of a run's latest attempt that has any, with
	// their holders, by name.
	OutputList(ctx context.Context, runID int64) ([]Output, error)
	// OutputPendingCount counts the outputs not yet settled with their copies (being
	// copied, or short of a live holder).
	OutputPendingCount(ctx context.Context) (int, error)
	// OutputFind lists outputs with their holders; see OutputFindParams.
	OutputFind(ctx context.Context, p OutputFindParams) ([]Output, error)
	// OutputClaim reserves a slot for Node to make a copy. ErrConflict when Node
	// already holds a verified copy or Target slots are taken (verified copies on Live
	// nodes and unexpired claims); ErrNotFound when the output is gone.
	OutputClaim(ctx context.Context, p OutputClaimParams) error
	// OutputHolderAdd records that Node holds a copy it checked (replacing its claim,
	// or its copy marked lost); ErrNotFound when the output is gone (expired meanwhile).
	OutputHolderAdd(ctx context.Context, p OutputHolderAddParams) error
	// OutputHolderDrop removes Node's copy or claim (a copy found corrupt, a copy that
	// failed): the output needs copies again. No error when there was none.
	OutputHolderDrop(ctx context.Context, ref OutputRef, node string) error
	// OutputSettle marks outputs as needing no copies for now (a copier found they
	// have as many as the live nodes allow).
	OutputSettle(ctx context.Context, refs []OutputRef) error
	// OutputExpire removes the records of the outputs, and of their holders, of runs
	// that ended before Before, and returns them. Each node deletes its own files of
	// outputs no longer recorded (see internal/output).
	OutputExpire(ctx context.Context, p OutputExpireParams) ([]Output, error)
}

// OutputFindParams filters OutputFind. Outputs come by run id (newest first, or oldest
// first with NeedsCopies), then attempt and name.
type OutputFindParams struct {
	RunID  int64   // 0: every run
	RunIDs []int64 // when set: only these runs (at most 1000)
	// NeedsCopies lists only the outputs of ended runs that need copies, oldest first.
	NeedsCopies bool
	Limit       int // 0: OutputFindLimitDefault
}

// OutputFindLimitDefault is how many outputs OutputFind returns when no limit is given.
const OutputFindLimitDefault = 1000

// OutputClaimParams claims a copy slot of Ref for Node until TTL has passed (by the
// repository's clock).
type OutputClaimParams struct {
	Ref    OutputRef
	Node   string
	Live   []string // the nodes whose verified copies count
	Target int      // how many copies the output should have
	TTL    time.Duration
}

// OutputHolderAddParams records Node's verified copy of Ref. When the verified copies on
// Live nodes (Node counted) reach Target, the output needs no more copies.
type OutputHolderAddParams struct {
	Ref    OutputRef
	Node   string
	Live   []string
	Target int
}

// OutputExpireParams removes the records of the outputs of runs finished before Before.
type OutputExpireParams struct {
	Before time.Time
}
