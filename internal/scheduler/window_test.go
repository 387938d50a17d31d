package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

func open(t *testing.T) store.Store {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// applyJobs stores jobs of one schedule each, named prefix-i, and returns their schedule ids.
func applyJobs(t *testing.T, st store.Store, prefix string, n int, expr func(i int) string, edit func(*job.Spec)) []int64 {
	t.Helper()
	p := store.JobApplyParams{Now: time.Now()}
	for i := range n {
		sp := job.Spec{Name: fmt.Sprintf("%s-%d", prefix, i), Schedule: []string{expr(i)}, Command: &job.Command{Argv: []string{"true"}}}
		if edit != nil {
			edit(&sp)
		}
		sp.Default()
		if err := sp.Validate(); err != nil {
			t.Fatal(err)
		}
		p.Jobs = append(p.Jobs, store.JobDef{Spec: sp, Schedules: []store.ScheduleSpec{{Key: sp.ScheduleKey(0), Expr: sp.Schedule[0]}}})
	}
	res, err := st.JobApply(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range res {
		ids = append(ids, r.Job.Schedules[0].ID)
	}
	return ids
}

// start runs a scheduler until the test ends.
func start(t *testing.T, p scheduler.Params) {
	t.Helper()
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	s := scheduler.New(p)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// A new primary reads the repository a page at a time, earliest first: the overdue
// schedules fire in the order they fell due, whatever their ids.
func TestWindowFiresEarliestFirst(t *testing.T) {
	t.Parallel()
	st := open(t)
	const n = 40
	ids := applyJobs(t, st, "late", n, func(int) string { return "@every 1h" }, func(sp *job.Spec) { sp.Misfire = job.MisfireRunAll })
	since := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	due := map[int64]time.Time{}
	var init store.ScheduleInitParams
	for i, id := range ids { // the later the id, the earlier it fell due
		at := since.Add(time.Duration(n-i) * time.Millisecond)
		due[id] = at
		init.Items = append(init.Items, store.ScheduleInitItem{ID: id, NextFireAt: &at})
	}
	if _, err := st.ScheduleInit(context.Background(), init); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int64
	start(t, scheduler.Params{Store: st, Page: 8, Observe: func(rs []store.FireResult, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			order = append(order, r.ScheduleID)
		}
	}})
	testutil.Wait(t, 30*time.Second, "every overdue schedule fired", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.IsSortedFunc(order[:n], func(a, b int64) int { return due[a].Compare(due[b]) }) {
		t.Fatalf("fired in the order %v, want by due time", order[:n])
	}
}

// Schedules far ahead stay in the repository: they are initialised, but memory holds only
// what falls due within the horizon, and what is due fires on time.
func TestWindowLeavesFarSchedulesInTheRepository(t *testing.T) {
	t.Parallel()
	st := open(t)
	far := applyJobs(t, st, "yearly", 300, func(i int) string { return fmt.Sprintf("%d %d 0 1 1 *", i%60, i/60) }, nil)
	applyJobs(t, st, "often", 3, func(int) string { return "@every 100ms" }, nil)
	var mu sync.Mutex
	fired, queued := 0, 0
	var s *scheduler.Scheduler
	p := scheduler.Params{Store: st, Page: 16, Horizon: time.Second, Observe: func(rs []store.FireResult, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			fired += len(r.Runs)
		}
		queued = max(queued, s.Queued()) // Observe runs on the scheduler's goroutine
	}}
	s = scheduler.New(p)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	testutil.Wait(t, 30*time.Second, "30 runs of the frequent schedules", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fired >= 30
	})
	if left, err := st.ScheduleListNew(context.Background(), store.ScheduleListNewParams{}); err != nil || len(left) > 0 {
		t.Fatalf("%d schedules not initialised (err %v)", len(left), err)
	}
	j, err := st.JobGet(context.Background(), "yearly-0")
	if err != nil || j.Schedules[0].ID != far[0] || j.Schedules[0].NextFireAt == nil || j.Schedules[0].NextFireAt.Month() != time.January {
		t.Fatalf("yearly schedule %+v (err %v), want initialised to January", j.Schedules, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if queued > 3 {
		t.Fatalf("up to %d schedules in memory, want only the 3 due within the horizon", queued)
	}
}

// A job applied while the scheduler runs is initialised and fires.
func TestWindowPicksUpNewJobs(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: open(t)}
	applyJobs(t, st, "old", 1, func(int) string { return "0 0 0 1 1 *" }, nil)
	s := scheduler.New(scheduler.Params{Store: st, Log: slog.New(slog.DiscardHandler), ReloadCheck: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	// Settled on the old job once it has checked the version again after loading it:
	// the new job is then a change it must notice.
	testutil.Wait(t, 30*time.Second, "the scheduler to check the configuration version twice", func() bool { return st.versions.Load() >= 2 })
	applyJobs(t, st, "new", 1, func(int) string { return "@every 200ms" }, nil)
	testutil.Wait(t, 30*time.Second, "a run of the new job", func() bool {
		runs, err := st.RunList(context.Background(), store.RunListParams{Job: "new-0"})
		return err == nil && len(runs) > 0
	})
}

// Two schedulers over one repository, each paging small windows, account for every
// occurrence exactly once: fired as a run or recorded, none twice, none dropped.
func TestWindowTwoSchedulersAccountForEveryOccurrence(t *testing.T) {
	t.Parallel()
	st := open(t)
	const n, step = 12, 250 * time.Millisecond
	applyJobs(t, st, "race", n, func(int) string { return "@every " + step.String() }, func(sp *job.Spec) { sp.Misfire = job.MisfireRunAll })
	for range 2 {
		start(t, scheduler.Params{Store: st, Page: 4, Horizon: time.Second})
	}
	testutil.Wait(t, 30*time.Second, "ten occurrences of each job", func() bool {
		runs, err := st.RunList(context.Background(), store.RunListParams{Job: fmt.Sprintf("race-%d", n-1), Limit: 1000})
		return err == nil && total(runs) >= 10
	})
	for i := range n {
		runs, err := st.RunList(context.Background(), store.RunListParams{Job: fmt.Sprintf("race-%d", i), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[time.Time]bool{}
		first, last := time.Time{}, time.Time{}
		for _, r := range runs {
			at := *r.ScheduledAt
			if seen[at] {
				t.Fatalf("job %d: %s fired twice", i, at)
			}
			seen[at] = true
			end := at
			if r.ScheduledUntil != nil {
				end = *r.ScheduledUntil
			}
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if end.After(last) {
				last = end
			}
		}
		if want := int(last.Sub(first)/step) + 1; total(runs) != want {
			t.Fatalf("job %d: %d occurrences accounted for from %s to %s, want %d", i, total(runs), first, last, want)
		}
	}
}

// flaky is a repository that fails its reads while down is set.
type flaky struct {
	store.Store
	down     atomic.Bool
	refused  atomic.Int64 // calls refused while down
	versions atomic.Int64 // ConfigVersion calls answered
}

var errDown = errors.New("repository unreachable")

func (f *flaky) ConfigVersion(ctx context.Context) (int64, error) {
	if f.down.Load() {
		f.refused.Add(1)
		return 0, errDown
	}
	f.versions.Add(1)
	return f.Store.ConfigVersion(ctx)
}

func (f *flaky) ScheduleListDue(ctx context.Context, p store.ScheduleListDueParams) ([]store.ScheduleEntry, error) {
	if f.down.Load() {
		f.refused.Add(1)
		return nil, errDown
	}
	return f.Store.ScheduleListDue(ctx, p)
}

// A scheduler that starts while the repository cannot be read keeps trying, and fires
// once it can.
func TestWindowStartsWhileTheRepositoryIsAway(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: open(t)}
	applyJobs(t, st, "tick", 1, func(int) string { return "@every 100ms" }, nil)
	st.down.Store(true)
	start(t, scheduler.Params{Store: st})
	testutil.Wait(t, 30*time.Second, "the scheduler to try the repository while it is away", func() bool { return st.refused.Load() >= 3 })
	st.down.Store(false)
	testutil.Wait(t, 30*time.Second, "a run once the repository is back", func() bool {
		runs, err := st.RunList(context.Background(), store.RunListParams{Job: "tick-0"})
		return err == nil && len(runs) > 0
	})
}
