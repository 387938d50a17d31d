// Package worker runs the attempts of job runs: the executors here start one command or
// send one HTTP request, bound it by a timeout and by the caller's context, capture its
// output within fixed limits, and describe what happened in a Result.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// OutputLimitDefault is how many bytes of stdout, and separately of stderr, an attempt
// keeps when Execution.OutputLimit is 0. Only the first bytes are kept; the rest is
// still read, so the child never blocks, and dropped, setting the Truncated flag.
const OutputLimitDefault = 1 << 20 // 1 MiB per stream

// KillGraceDefault is how long a command has to exit after SIGTERM before its process
// group gets SIGKILL, when Execution.KillGrace is 0.
const KillGraceDefault = 5 * time.Second

// Execution is what an executor needs for one attempt of a run.
type Execution struct {
	RunID       int64
	Job         string
	Attempt     int
	ScheduledAt time.Time     // zero for on-demand
	OutputDir   string        // existing empty directory; exported to commands as $TANDEM_OUTPUT_DIR
	Timeout     time.Duration // 0 = none
	OutputLimit int64         // max bytes kept of stdout and of stderr each; 0 = OutputLimitDefault
	KillGrace   time.Duration // SIGTERM to SIGKILL delay when stopping a command; 0 = KillGraceDefault
	// RunAs is the user a command runs as (nil: this process's user).
	RunAs *RunAs
	// Launcher starts commands so that they die with this process; nil: plain start.
	Launcher *Launcher
	// Started, if set, is told the process group of a command once it runs.
	Started func(pgid int)
	// LiveStdout and LiveStderr, if set, are also given what a command writes, as it
	// writes it (the worker's view of a running attempt's output).
	LiveStdout, LiveStderr io.Writer
}

// Result of one attempt.
type Result struct {
	// ExitCode is the process exit code; -1 when the process did not exit normally
	// (killed by a signal, could not start). For HTTP it is the response status code,
	// -1 when no response arrived.
	ExitCode int

	// Stdout and Stderr hold the first OutputLimit bytes of each stream (for HTTP,
	// Stdout is the response body). The flags tell that more was written and dropped.
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool

	Err      error // nil on success; otherwise why the attempt failed, for operators
	TimedOut bool  // Execution.Timeout elapsed and the attempt was stopped
	Canceled bool  // the caller's ctx ended (cancel request or shutdown), not a timeout

	// Outputs lists the regular files under OutputDir after the attempt.
	Outputs []OutputFile
}

// OutputFile is one file an attempt left in its output directory.
type OutputFile struct {
	Name   string // path relative to OutputDir, slash separated
	Size   int64
	SHA256 string // hex
}

// timeoutError is the cause of an attempt context whose Timeout elapsed. Being a type
// of its own lets the executors tell it apart from a deadline the caller set.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("timed out after %s", e.after) }

// attemptContext bounds ctx by x.Timeout, if any.
func (x Execution) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if x.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, x.Timeout, timeoutError{x.Timeout})
}

// markStopped records in r why ctx (from attemptContext) ended: its own timeout, or the
// caller's context. The caller's own cause, when it gave one, is kept in the text so an
// operator can tell a cancel request from a shutdown.
func (r *Result) markStopped(ctx context.Context) {
	cause := context.Cause(ctx)
	if te := (timeoutError{}); errors.As(cause, &te) {
		r.TimedOut, r.Err = true, te
		return
	}
	r.Canceled = true
	if cause == nil || cause == context.Canceled {
		r.Err = errors.New("canceled")
		return
	}
	r.Err = fmt.Errorf("canceled: %w", cause)
}

func (x Execution) outputLimit() int64 {
	if x.OutputLimit > 0 {
		return x.OutputLimit
	}
	return OutputLimitDefault
}

func (x Execution) killGrace() time.Duration {
	if x.KillGrace > 0 {
		return x.KillGrace
	}
	return KillGraceDefault
}

// collectInto lists x.OutputDir into r. Listing the directory even after a failure keeps
// every Result the same shape: partial reports are still worth keeping.
func (r *Result) collectInto(dir string) {
	if dir == "" {
		return
	}
	outs, err := CollectOutputs(dir)
	r.Outputs = outs
	if err != nil {
		r.Err = errors.Join(r.Err, fmt.Errorf("collect outputs: %w", err))
	}
}
