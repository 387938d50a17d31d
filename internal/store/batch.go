package store

import "time"

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
