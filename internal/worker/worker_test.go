package worker

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

// newStore opens a fresh SQLite repository holding the given jobs.
func newStore(t *testing.T, specs ...job.Spec) store.Store {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := store.JobApplyParams{Now: time.Now()}
	for _, sp := range specs {
		sp.Default()
		if err := sp.Validate(); err != nil {
			t.Fatal(err)
		}
		p.Jobs = append(p.Jobs, store.JobDef{Spec: sp})
	}
	if _, err := st.JobApply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return st
}

// startWorker runs a worker for node w1 until the test ends, then shuts it down.
func startWorker(t *testing.T, st store.Store, capacity int) *Worker {
	t.Helper()
	w := New(Params{Store: st, Log: slog.New(slog.DiscardHandler), Node: "w1", DataDir: t.TempDir(), Capacity: capacity,
		Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = w.Shutdown(sctx)
	})
	return w
}

// enqueue creates n runs of the job and assigns them to w1.
func enqueue(t *testing.T, st store.Store, name string, n int) []store.Run {
	t.Helper()
	runs, err := st.RunCreateBatch(context.Background(), store.RunCreateBatchParams{Job: name, Count: n, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var as []store.Assignment
	for _, r := range runs {
		as = append(as, store.Assignment{RunID: r.ID, Node: "w1", Token: "tok-" + name + "-" + time.Now().Format(time.RFC3339Nano)})
	}
	if _, err := st.RunAssign(context.Background(), store.RunAssignParams{Now: time.Now(), Assignments: as}); err != nil {
		t.Fatal(err)
	}
	return runs
}

// waitState polls the run until it is in state, failing after a deadline.
func waitState(t *testing.T, st store.Store, id int64, state store.RunState) store.Run {
	t.Helper()
	var r store.Run
	testutil.Wait(t, 10*time.Second, "run to be "+string(state), func() bool {
		var err error
		r, err = st.RunGet(context.Background(), id)
		return err == nil && r.State == state
	})
	return r
}

// A worker executes no-op runs, many at a time but never more than its capacity, and
// records each result under its attempt's token.
func TestWorkerRunsNoopJobs(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "n", Noop: &job.Noop{}}, job.Spec{Name: "slow", Noop: &job.Noop{Sleep: job.Duration(30 * time.Millisecond)}})
	w := startWorker(t, st, 8)
	runs := enqueue(t, st, "n", 60)
	slow := enqueue(t, st, "slow", 8)
	peak := 0
	testutil.Wait(t, 10*time.Second, "every run to end", func() bool {
		peak = max(peak, w.Running())
		load, err := st.RunLoad(context.Background())
		return err == nil && len(load) == 0
	})
	if peak > 8 {
		t.Fatalf("%d attempts at once on a worker of capacity 8", peak)
	}
	for _, r := range append(runs, slow...) {
		got, err := st.RunGet(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.RunSucceeded || got.Attempt != 1 || got.ExitCode == nil || *got.ExitCode != 0 ||
			got.StartedAt == nil || got.FinishedAt == nil || got.FinishedAt.Before(*got.StartedAt) {
			t.Fatalf("run %d: %+v", r.ID, got)
		}
	}
	if got, _ := st.RunGet(context.Background(), slow[0].ID); got.FinishedAt.Sub(*got.StartedAt) < 30*time.Millisecond {
		t.Fatalf("a no-op sleeping 30ms ended after %s", got.FinishedAt.Sub(*got.StartedAt))
	}
}

// A cancel request stops a sleeping no-op; its timeout fails it (and retries it).
func TestWorkerNoopCancelAndTimeout(t *testing.T) {
	t.Parallel()
	st := newStore(t,
		job.Spec{Name: "long", Noop: &job.Noop{Sleep: job.Duration(time.Hour)}},
		job.Spec{Name: "late", Timeout: job.Duration(20 * time.Millisecond), Retries: 1, RetryBackoff: job.Duration(time.Hour), RetryBackoffMax: job.Duration(time.Hour),
			Noop: &job.Noop{Sleep: job.Duration(time.Hour)}})
	startWorker(t, st, 4)
	long := enqueue(t, st, "long", 1)[0]
	waitState(t, st, long.ID, store.RunRunning)
	if _, err := st.RunCancel(context.Background(), store.RunCancelParams{ID: long.ID, Now: time.Now(), Reason: "canceled by request"}); err != nil {
		t.Fatal(err)
	}
	if r := waitState(t, st, long.ID, store.RunCanceled); r.Reason != "canceled: canceled by request" {
		t.Fatalf("canceled run: %+v", r)
	}

	late := enqueue(t, st, "late", 1)[0]
	r := waitState(t, st, late.ID, store.RunQueued)
	if r.Attempt != 1 || r.Reason != "timed out after 20ms" || !r.NotBefore.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("timed-out run: %+v", r)
	}
}

// An attempt whose run was given to another attempt (its node declared lost) is stopped,
// and its result is refused: the run stays as the re-queue left it.
func TestWorkerStaleAttemptRefused(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "long", Retries: 1, Noop: &job.Noop{Sleep: job.Duration(time.Hour)}})
	w := startWorker(t, st, 4)
	run := enqueue(t, st, "long", 1)[0]
	waitState(t, st, run.ID, store.RunRunning)
	if err := st.NodeHeartbeat(context.Background(), store.NodeHeartbeatParams{Node: store.Node{ID: "w1", Mode: "worker"}}); err != nil {
		t.Fatal(err)
	}
	// Silent for any time at all, by the repository's clock (whose resolution may be 1ms).
	var res store.NodeLoseResult
	testutil.Wait(t, 10*time.Second, "the node to be declared lost", func() bool {
		var err error
		res, err = st.NodeLose(context.Background(), store.NodeLoseParams{Node: "w1", Silence: 0})
		return err == nil && res.Lost
	})
	if len(res.Requeued) != 1 {
		t.Fatalf("NodeLose: %+v", res)
	}
	w.Wake()
	testutil.Wait(t, 10*time.Second, "the superseded attempt to stop", func() bool { return w.Running() == 0 })
	r, err := st.RunGet(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunQueued || r.Token != "" || r.Node != "" || r.Attempt != 1 {
		t.Fatalf("the stale attempt's result was recorded: %+v", r)
	}
}

// stopMidStart is a repository in which the node's stop begins just as a batch of runs
// is started: the worker's context is canceled once the start has committed.
type stopMidStart struct {
	store.Store
	stop func()
}

func (s stopMidStart) RunStartBatch(ctx context.Context, p store.RunStartBatchParams) ([]store.Run, error) {
	runs, err := s.Store.RunStartBatch(ctx, p)
	s.stop()
	return runs, err
}

// A stop that begins while runs are being started does not fail them: a started run is
// executed to its end (Shutdown waits for it), never failed for want of its definition.
func TestWorkerStopDuringStart(t *testing.T) {
	t.Parallel()
	inner := newStore(t, job.Spec{Name: "n", Noop: &job.Noop{Sleep: job.Duration(20 * time.Millisecond)}})
	ctx, cancel := context.WithCancel(context.Background())
	w := New(Params{Store: stopMidStart{Store: inner, stop: cancel}, Log: slog.New(slog.DiscardHandler), Node: "w1",
		DataDir: t.TempDir(), Capacity: 4, Poll: 20 * time.Millisecond})
	runs := enqueue(t, inner, "n", 3)
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := w.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		got, err := inner.RunGet(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.RunSucceeded {
			t.Fatalf("run %d after a stop during its start: %s (%s), want succeeded", r.ID, got.State, got.Reason)
		}
	}
}

// Retries wait retry_backoff, doubled for each earlier attempt, never more than
// retry_backoff_max.
func TestBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	sp := job.Spec{RetryBackoff: job.Duration(200 * time.Millisecond), RetryBackoffMax: job.Duration(time.Second)}
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := Backoff(sp, i+1); got != w {
			t.Errorf("after attempt %d: %s, want %s", i+1, got, w)
		}
	}
	sp.RetryBackoffMax = job.Duration(100 * time.Millisecond) // a cap below the first delay wins
	if got := Backoff(sp, 1); got != 100*time.Millisecond {
		t.Errorf("capped first delay: %s, want 100ms", got)
	}
	if got := Backoff(job.Spec{RetryBackoff: job.Duration(time.Hour), RetryBackoffMax: job.Duration(24 * time.Hour)}, 60); got != 24*time.Hour {
		t.Errorf("after attempt 60: %s, want the 24h cap (no overflow)", got)
	}
}

// flakyFinish is a repository whose finish writes fail until healed, as during a
// database restart.
type flakyFinish struct {
	store.Store
	mu     sync.Mutex
	broken bool
	tries  int
}

func (f *flakyFinish) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.broken {
		return errors.New("connection refused")
	}
	return nil
}

func (f *flakyFinish) RunFinishBatch(ctx context.Context, p store.RunFinishBatchParams) ([]error, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.RunFinishBatch(ctx, p)
}

// A result the repository cannot take for longer than the quick retries is kept and
// recorded once it can be: it was dropped, leaving the run running forever on a live
// node (found by the PostgreSQL soak across a server restart).
func TestResultRecordedAfterALongOutage(t *testing.T) {
	st := newStore(t, job.Spec{Name: "n", Noop: &job.Noop{}})
	f := &flakyFinish{Store: st, broken: true}
	w := startWorker(t, f, 2)
	runs := enqueue(t, st, "n", 1)
	testutil.Wait(t, 10*time.Second, "the quick retries to be spent", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.tries > RecordAttemptsDefault+2
	})
	if w.Running() != 1 {
		t.Fatalf("running %d while its result is unrecorded; want the attempt to hold its slot", w.Running())
	}
	f.mu.Lock()
	f.broken = false
	f.mu.Unlock()
	waitState(t, st, runs[0].ID, store.RunSucceeded)
	testutil.Wait(t, 10*time.Second, "the slot to be freed", func() bool { return w.Running() == 0 })
}
