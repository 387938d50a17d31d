package store

import (
	"context"
	"fmt"
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
	// OutputClaimBatch reserves, in one transaction, a slot for Node to make a copy of
	// each output, each judged on its own. An item's error (in the result, in the order
	// of ps) is ErrConflict when Node already holds a verified copy or Target slots are
	// taken (verified copies on Live nodes and unexpired claims), ErrNotFound when the
	// output is gone; the error returned is the transaction's.
	OutputClaimBatch(ctx context.Context, ps []OutputClaimParams) ([]error, error)
	// OutputHolderAddBatch records, in one transaction, that Node holds copies it
	// checked (replacing its claims, or its copies marked lost); an item's error is
	// ErrNotFound when its output is gone (expired meanwhile).
	OutputHolderAddBatch(ctx context.Context, ps []OutputHolderAddParams) ([]error, error)
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

// Output is a file a run produced, kept in the data directory of the node that ran it
// (Node) and of every node that holds a verified copy of it (Holders).
type Output struct {
	RunID     int64
	Attempt   int
	Name      string
	Size      int64
	SHA256    string
	Node      string // the producer
	CreatedAt time.Time
	// Copies is how many verified copies the job asked for (its copies setting); 0:
	// the cluster's default (output_copies).
	Copies int
	// Holders are the nodes that hold, are making, or held a copy (the producer
	// among them); filled by the Outputs reads.
	Holders []Holder
}

// Ref names the output.
func (o Output) Ref() OutputRef { return OutputRef{RunID: o.RunID, Attempt: o.Attempt, Name: o.Name} }

// OutputRef names one output file: a run's attempt and the file's slash-separated name.
type OutputRef struct {
	RunID   int64
	Attempt int
	Name    string
}

// String is the ref as the API and events show it: RUN/ATTEMPT/NAME.
func (r OutputRef) String() string { return fmt.Sprintf("%d/%d/%s", r.RunID, r.Attempt, r.Name) }

// Holder is one node's copy of an output.
type Holder struct {
	Node string
	// VerifiedAt is when the node recorded a copy whose SHA-256 it checked; nil while
	// the copy is being made, under a claim that lasts until ClaimUntil.
	VerifiedAt *time.Time
	ClaimUntil *time.Time
	// LostAt is when the node was declared lost holding the copy: it does not count
	// until the node comes back and checks the copy again.
	LostAt *time.Time
}

// Verified reports whether the holder has a checked copy and was not lost since.
func (h Holder) Verified() bool { return h.VerifiedAt != nil && h.LostAt == nil }

// OutputClaim claims one copy slot: OutputClaimBatch of one.
func OutputClaim(ctx context.Context, st Outputs, p OutputClaimParams) error {
	errs, err := st.OutputClaimBatch(ctx, []OutputClaimParams{p})
	if err != nil {
		return err
	}
	return errs[0]
}

// OutputHolderAdd records one verified copy: OutputHolderAddBatch of one.
func OutputHolderAdd(ctx context.Context, st Outputs, p OutputHolderAddParams) error {
	errs, err := st.OutputHolderAddBatch(ctx, []OutputHolderAddParams{p})
	if err != nil {
		return err
	}
	return errs[0]
}
