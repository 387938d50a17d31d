package worker

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// RunNoop executes the no-op executor for x: it waits n.Sleep (not at all when zero)
// and succeeds with exit code 0. Like the other executors it is bounded by x.Timeout and
// stopped by ctx. It writes and lists nothing, so x.OutputDir may be empty.
func RunNoop(ctx context.Context, x Execution, n job.Noop) Result {
	if n.Sleep <= 0 {
		if ctx.Err() != nil {
			r := Result{ExitCode: -1}
			r.markStopped(ctx)
			return r
		}
		return Result{}
	}
	ctx, cancel := x.attemptContext(ctx)
	defer cancel()
	t := time.NewTimer(n.Sleep.D())
	defer t.Stop()
	select {
	case <-t.C:
		return Result{}
	case <-ctx.Done():
		r := Result{ExitCode: -1}
		r.markStopped(ctx)
		return r
	}
}
