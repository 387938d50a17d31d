package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

func TestRunNoop(t *testing.T) {
	t.Parallel()
	x := Execution{RunID: 1, Job: "n", Attempt: 1}
	if r := RunNoop(context.Background(), x, job.Noop{}); r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("no sleep: %+v", r)
	}
	start := time.Now()
	if r := RunNoop(context.Background(), x, job.Noop{Sleep: job.Duration(50 * time.Millisecond)}); r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("sleep: %+v", r)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("returned after %s, want at least the 50ms sleep", d)
	}
}

func TestRunNoopTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	x := Execution{RunID: 1, Job: "n", Attempt: 1, Timeout: 20 * time.Millisecond}
	r := RunNoop(context.Background(), x, job.Noop{Sleep: job.Duration(time.Hour)})
	if !r.TimedOut || r.Err == nil || r.ExitCode != -1 {
		t.Fatalf("timeout: %+v", r)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(10*time.Millisecond, func() { cancel(errors.New("canceled by request")) })
	r = RunNoop(ctx, Execution{RunID: 1, Job: "n", Attempt: 1}, job.Noop{Sleep: job.Duration(time.Hour)})
	if !r.Canceled || r.TimedOut || r.Err == nil || r.Err.Error() != "canceled: canceled by request" {
		t.Fatalf("cancel: %+v", r)
	}

	r = RunNoop(ctx, Execution{RunID: 1, Job: "n", Attempt: 1}, job.Noop{})
	if !r.Canceled || r.Err == nil {
		t.Fatalf("canceled before it started: %+v", r)
	}
}
