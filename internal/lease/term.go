package lease

import (
	"context"
	"errors"

	"github.com/tandemhq/tandem/internal/store"
)

// Term is one tenure of a lease by this process, from the acquire that began it to the
// depose that ended it. It is a value: whatever runs under the role (scheduler,
// dispatcher, reaper, notifier) runs under Context and stops when it ends, without
// anyone having to tell it. Nothing that receives a Term may block the keeper.
type Term struct {
	Epoch    int64       // the lease's epoch: every fenced write of the term carries it
	Previous store.Lease // the lease as it was before this term began
	How      string      // how the term began, in words
	ctx      context.Context
	recorded bool // its end's event was written with the resignation (Params.Resigned)
}

// EndRecorded reports whether the term's end was recorded in the transaction that
// resigned the lease (with Params.Resigned's event). A term that ended any other way
// (a renewal failed or was fenced, a resignation failed) wrote nothing of its own.
func (t Term) EndRecorded() bool { return t.recorded }

// ErrTermEnded is the cause of every ended term's context; Ended wraps it with why.
var ErrTermEnded = errors.New("term ended")

// Context ends when the term ends (context.Cause tells why: see Ended).
func (t Term) Context() context.Context {
	if t.ctx == nil {
		return endedContext
	}
	return t.ctx
}

// Done is closed when the term ends.
func (t Term) Done() <-chan struct{} { return t.Context().Done() }

// Ended is nil while the term lasts, then an error wrapping ErrTermEnded that says why
// it ended (renew failed, taken over, handed over, stopping).
func (t Term) Ended() error {
	if t.Context().Err() == nil {
		return nil
	}
	return context.Cause(t.Context())
}

// endedContext is the context of the zero Term: ended from the start.
var endedContext = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrTermEnded)
	return ctx
}()

// termEnd is why a term ended.
type termEnd struct{ reason string }

func (e *termEnd) Error() string { return "term ended: " + e.reason }
func (e *termEnd) Unwrap() error { return ErrTermEnded }

// Reason is the words of why a term ended ("" while it lasts).
func (t Term) Reason() string {
	var e *termEnd
	if errors.As(t.Ended(), &e) {
		return e.reason
	}
	return ""
}
