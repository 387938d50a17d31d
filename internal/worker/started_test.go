package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/testutil"
)

// assignStarted creates n runs of the job and assigns them to w1 as the dispatcher does:
// the assignment is the attempt's start.
func assignStarted(t *testing.T, st store.Store, name string, n int) []store.Run {
	t.Helper()
	runs, err := st.RunCreateBatch(context.Background(), store.RunCreateBatchParams{Job: name, Count: n, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var as []store.Assignment
	for _, r := range runs {
		as = append(as, store.Assignment{RunID: r.ID, Node: "w1", Token: fmt.Sprintf("tok-%d", r.ID)})
	}
	if k, err := st.RunAssign(context.Background(), store.RunAssignParams{Now: time.Now(), Assignments: as, Start: true}); err != nil || k != n {
		t.Fatalf("assign: %d, %v", k, err)
	}
	return runs
}

// countingStore counts the runs started by RunStartBatch (none should be: the
// assignment started them).
type countingStore struct {
	store.Store
	starts chan int
}

func (s countingStore) RunStartBatch(ctx context.Context, p store.RunStartBatchParams) ([]store.Run, error) {
	s.starts <- len(p.Runs)
	return s.Store.RunStartBatch(ctx, p)
}

// Runs started by their assignment are executed once each, without another write to
// start them, and whatever an earlier process of the node left running is ended as
// interrupted (retried), never begun again.
func TestWorkerBeginsRunsStartedByAssignment(t *testing.T) {
	t.Parallel()
	base := newStore(t, job.Spec{Name: "n", Noop: &job.Noop{}, Retries: 1})
	left := assignStarted(t, base, "n", 2) // running before this worker's first listing
	st := countingStore{Store: base, starts: make(chan int, 100)}
	startWorker(t, st, 8)
	testutil.Wait(t, 10*time.Second, "the leftovers to be queued again", func() bool {
		r, err := base.RunGet(context.Background(), left[1].ID)
		return err == nil && r.State != store.RunRunning
	})
	runs := assignStarted(t, base, "n", 40)
	for _, r := range runs {
		got := waitState(t, base, r.ID, store.RunSucceeded)
		if got.Attempt != 1 || got.StartedAt == nil || got.FinishedAt == nil {
			t.Fatalf("run %d: %+v", r.ID, got)
		}
	}
	for _, r := range left {
		got, err := base.RunGet(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.RunQueued || got.Attempt != 1 || !strings.HasPrefix(got.Reason, "interrupted") {
			t.Fatalf("leftover run %d: %+v, want interrupted and queued for its second attempt", r.ID, got)
		}
	}
	select {
	case n := <-st.starts:
		t.Fatalf("RunStartBatch called for %d runs", n)
	default:
	}
}

// A stop hands back the runs started by their assignment that the worker had not
// begun, without spending their attempt, and only while the node id is its process's.
func TestWorkerStopHandsBackRunsNotBegun(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "slow", Noop: &job.Noop{Sleep: job.Duration(300 * time.Millisecond)}})
	if err := st.NodeClaim(context.Background(), store.NodeClaimParams{Node: store.Node{ID: "w1", Holder: "w1#1", Mode: "standby", Capacity: 1}}); err != nil {
		t.Fatal(err)
	}
	w := New(Params{Store: st, Log: slog.New(slog.DiscardHandler), Node: "w1", Holder: "w1#1", DataDir: t.TempDir(), Capacity: 1, Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Wait(t, 10*time.Second, "the first listing", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.listed })
	runs := assignStarted(t, st, "slow", 3) // capacity 1: one is begun, two wait
	testutil.Wait(t, 10*time.Second, "one run to be begun", func() bool { return w.Running() == 1 })
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := w.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	states := map[store.RunState]int{}
	for _, r := range runs {
		got, err := st.RunGet(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		states[got.State]++
		if got.State == store.RunQueued && (got.Attempt != 0 || got.Token != "") {
			t.Fatalf("handed back run: %+v, want no attempt spent", got)
		}
	}
	if states[store.RunSucceeded] != 1 || states[store.RunQueued] != 2 {
		t.Fatalf("after the stop: %v, want 1 succeeded and 2 handed back", states)
	}
}

// A run assigned to the node after its process claimed the id, but before the worker's
// first listing, is this process's own: it is begun, not taken for a leftover (found
// by bench/outputs on tmpfs: nodes that started while the primary already dispatched
// failed their first runs as "interrupted").
func TestFirstListingKeepsRunsAssignedSinceTheClaim(t *testing.T) {
	t.Parallel()
	base := newStore(t, job.Spec{Name: "n", Noop: &job.Noop{}})
	left := assignStarted(t, base, "n", 1) // before the claim: an earlier process's
	time.Sleep(2 * time.Millisecond)
	if err := base.NodeClaim(context.Background(), store.NodeClaimParams{Node: store.Node{ID: "w1", Holder: "w1#2", Mode: "standby", Capacity: 8}}); err != nil {
		t.Fatal(err)
	}
	nodes, err := base.NodeList(context.Background())
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %v: %v", nodes, err)
	}
	mine := assignStarted(t, base, "n", 3) // since the claim, before the first listing
	w := New(Params{Store: base, Log: slog.New(slog.DiscardHandler), Node: "w1", Holder: "w1#2", DataDir: t.TempDir(), Capacity: 8, Poll: 20 * time.Millisecond})
	w.Claimed(nodes[0].HeartbeatAt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, r := range mine {
		if got := waitState(t, base, r.ID, store.RunSucceeded); got.Attempt != 1 {
			t.Fatalf("run %d: %+v", r.ID, got)
		}
	}
	got := waitState(t, base, left[0].ID, store.RunFailed)
	if !strings.HasPrefix(got.Reason, "interrupted") {
		t.Fatalf("leftover: %+v, want interrupted", got)
	}
}
