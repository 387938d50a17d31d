package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newStore opens a fresh SQLite repository holding the given jobs.
func newStore(t *testing.T, specs ...job.Spec) store.Store {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := store.JobApplyParams{Now: t0}
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

func enqueue(t *testing.T, st store.Store, name string, n int) {
	t.Helper()
	if _, err := st.RunCreateBatch(context.Background(), store.RunCreateBatchParams{Job: name, Count: n, Now: t0}); err != nil {
		t.Fatal(err)
	}
}

func dispatcher(st store.Store, epoch int64, targets ...Target) *Dispatcher {
	return New(Params{Store: st, Log: slog.New(slog.DiscardHandler), Epoch: epoch, Now: func() time.Time { return t0 },
		Targets: func(context.Context) ([]Target, error) { return append([]Target(nil), targets...), nil }})
}

// assigned counts the runs of each node.
func assigned(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	load, err := st.RunLoad(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range load {
		out[c.Node] += c.Count
	}
	return out
}

// Runs no node can take (a tag no node has) are passed over, and the ones behind them
// fill the free capacity, no more.
func TestOncePassesOverRunsNoNodeTakes(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "gpu", Tags: []string{"gpu"}, Noop: &job.Noop{}}, job.Spec{Name: "plain", Noop: &job.Noop{}})
	enqueue(t, st, "gpu", 6)
	enqueue(t, st, "plain", 5)
	n, err := dispatcher(st, 0, Target{ID: "n1", Free: 3}).Once(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("Once = %d, %v; want 3 assigned", n, err)
	}
	runs, err := st.RunList(context.Background(), store.RunListParams{States: []store.RunState{store.RunRunning}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Job != "plain" || r.Node != "n1" || r.Token == "" || r.Attempt != 1 {
			t.Fatalf("assigned run: %+v", r)
		}
	}
}

// Round robin over the nodes with free capacity and the job's tags.
func TestOnceRoundRobin(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "p", Noop: &job.Noop{}}, job.Spec{Name: "g", Tags: []string{"gpu"}, Noop: &job.Noop{}})
	enqueue(t, st, "g", 2)
	enqueue(t, st, "p", 5)
	d := dispatcher(st, 0, Target{ID: "a", Free: 2}, Target{ID: "b", Free: 2, Tags: []string{"gpu"}}, Target{ID: "c", Free: 10})
	if n, err := d.Once(context.Background()); err != nil || n != 7 {
		t.Fatalf("Once = %d, %v; want 7", n, err)
	}
	if got := assigned(t, st); got["a"] != 2 || got["b"] != 2 || got["c"] != 3 {
		t.Fatalf("assigned %v, want a:2 b:2 (both gpu runs) c:3", got)
	}
}

// A job with overlap "queue" has one run out at a time.
func TestOnceOverlapQueue(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "q", Overlap: job.OverlapQueue, Noop: &job.Noop{}})
	enqueue(t, st, "q", 3)
	d := dispatcher(st, 0, Target{ID: "n1", Free: 5})
	for range 2 {
		if n, err := d.Once(context.Background()); err != nil || n > 1 {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	if got := assigned(t, st); got["n1"] != 1 {
		t.Fatalf("assigned %v, want one run of q", got)
	}
}

// A dispatcher whose epoch is not the lease's current one assigns nothing.
func TestOnceFenced(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "p", Noop: &job.Noop{}})
	l, err := st.LeaseAcquire(context.Background(), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "x#1", Node: "x", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, st, "p", 2)
	_, err = dispatcher(st, l.Epoch+1, Target{ID: "n1", Free: 5}).Once(context.Background())
	if err == nil || !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Once with a stale epoch: %v, want ErrFenced", err)
	}
	if got := assigned(t, st); len(got) != 0 {
		t.Fatalf("assigned %v under a stale epoch", got)
	}
	if n, err := dispatcher(st, l.Epoch, Target{ID: "n1", Free: 5}).Once(context.Background()); err != nil || n != 2 {
		t.Fatalf("Once under the current epoch = %d, %v", n, err)
	}
}

// A long backlog of runs that cannot be placed now, at the head of the queue, never hides
// the runs behind it: a job with overlap "queue" whose one run is out, and a job whose
// tags no node has, each with far more queued runs than a pass reads.
func TestOnceBacklogAtHeadDoesNotBlock(t *testing.T) {
	t.Parallel()
	st := newStore(t, job.Spec{Name: "q", Overlap: job.OverlapQueue, Noop: &job.Noop{}},
		job.Spec{Name: "gpu", Tags: []string{"gpu"}, Noop: &job.Noop{}}, job.Spec{Name: "p", Noop: &job.Noop{}})
	enqueue(t, st, "q", 1)
	d := dispatcher(st, 0, Target{ID: "n1", Free: 4})
	if n, err := d.Once(context.Background()); err != nil || n != 1 {
		t.Fatalf("Once = %d, %v; want q's first run out", n, err)
	}
	enqueue(t, st, "q", MinPage*MaxPages)
	enqueue(t, st, "gpu", MinPage*MaxPages)
	enqueue(t, st, "p", 5)
	d = dispatcher(st, 0, Target{ID: "n1", Free: 3})
	if n, err := d.Once(context.Background()); err != nil || n != 3 {
		t.Fatalf("Once = %d, %v; want 3 runs of p placed past the backlog", n, err)
	}
	runs, err := st.RunList(context.Background(), store.RunListParams{States: []store.RunState{store.RunRunning}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Job]++
	}
	if count["q"] != 1 || count["p"] != 3 || count["gpu"] != 0 {
		t.Fatalf("assigned runs by job %v, want q:1 (its first) p:3", count)
	}
}
