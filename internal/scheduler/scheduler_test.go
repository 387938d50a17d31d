package scheduler_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup stores a job whose only schedule's next fire time lies `behind` in the past, as
// if the scheduler had been down since then, and returns the store.
func setup(t *testing.T, spec job.Spec, behind time.Duration) (store.Store, time.Time) {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spec.Default()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := st.JobApply(ctx, store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: spec,
		Schedules: []store.ScheduleSpec{{Key: spec.ScheduleKey(0), Expr: spec.Schedule[0]}}}}})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-behind).Truncate(time.Second)
	if _, err := st.ScheduleInit(ctx, store.ScheduleInitParams{Items: []store.ScheduleInitItem{{ID: res[0].Job.Schedules[0].ID, NextFireAt: &since}}}); err != nil {
		t.Fatal(err)
	}
	return st, since
}

// runUntil runs a scheduler until cond holds for the job's runs.
func runUntil(t *testing.T, st store.Store, name string, cond func([]store.Run) bool) []store.Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	s := scheduler.New(scheduler.Params{Store: st, Log: slog.New(slog.DiscardHandler)})
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runs, err := st.RunList(context.Background(), store.RunListParams{Job: name, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		if cond(runs) {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; runs: %+v", runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func byState(runs []store.Run) map[store.RunState][]store.Run {
	m := map[store.RunState][]store.Run{}
	for _, r := range runs {
		m[r.State] = append(m[r.State], r)
	}
	return m
}

func spec(name, misfire string) job.Spec {
	return job.Spec{Name: name, Schedule: []string{"@every 1s"}, Misfire: misfire, MisfireGrace: job.Duration(3 * time.Second),
		Command: &job.Command{Argv: []string{"true"}}}
}

// total counts the occurrences a set of runs and records covers.
func total(runs []store.Run) int {
	n := 0
	for _, r := range runs {
		n += r.Occurrences
	}
	return n
}

func TestMisfireSkipRecordsTheMissedRange(t *testing.T) {
	t.Parallel()
	st, since := setup(t, spec("skip", job.MisfireSkip), time.Minute)
	runs := runUntil(t, st, "skip", func(r []store.Run) bool { return len(byState(r)[store.RunMissed]) == 1 })
	m := byState(runs)[store.RunMissed][0]
	if !m.ScheduledAt.Equal(since) || m.Occurrences < 50 || m.Occurrences > 60 || m.Reason == "" {
		t.Fatalf("missed record: %+v", m)
	}
	// Within the 3s grace, the latest occurrences fire normally.
	if q := len(byState(runs)[store.RunQueued]); q < 2 || q > 5 {
		t.Fatalf("%d on-time runs, want the ones within grace (about 3)", q)
	}
}

func TestMisfireRunOnceFiresOne(t *testing.T) {
	t.Parallel()
	st, _ := setup(t, spec("once", job.MisfireRunOnce), time.Minute)
	runs := runUntil(t, st, "once", func(r []store.Run) bool { return len(byState(r)[store.RunMissed]) == 1 })
	m := byState(runs)[store.RunMissed][0]
	queued := byState(runs)[store.RunQueued]
	// One catch-up run for the latest late occurrence, right after the missed range.
	catchUp := m.ScheduledUntil.Add(time.Second)
	found := false
	for _, r := range queued {
		found = found || r.ScheduledAt.Equal(catchUp)
	}
	if !found {
		t.Fatalf("no catch-up run at %s; runs %+v", catchUp, queued)
	}
}

func TestMisfireRunAllWithinWindow(t *testing.T) {
	t.Parallel()
	sp := spec("all", job.MisfireRunAll)
	sp.MisfireWindow = job.Duration(20 * time.Second)
	st, since := setup(t, sp, time.Minute)
	runs := runUntil(t, st, "all", func(r []store.Run) bool { return len(byState(r)[store.RunQueued]) >= 20 })
	m := byState(runs)[store.RunMissed]
	if len(m) != 1 || !m[0].ScheduledAt.Equal(since) || m[0].Occurrences < 35 || m[0].Occurrences > 45 {
		t.Fatalf("missed: %+v, want about 40 occurrences older than the 20s window", m)
	}
	// Every second from `since` to the newest occurrence is accounted for exactly once.
	newest := since
	for _, r := range runs {
		last := *r.ScheduledAt
		if r.ScheduledUntil != nil {
			last = *r.ScheduledUntil
		}
		if last.After(newest) {
			newest = last
		}
	}
	if want := int(newest.Sub(since)/time.Second) + 1; total(runs) != want {
		t.Fatalf("%d occurrences accounted for between %s and %s, want %d", total(runs), since, newest, want)
	}
}

func TestBlackoutRecordsSkipped(t *testing.T) {
	t.Parallel()
	today := time.Now().UTC().Format(time.DateOnly)
	sp := spec("black", job.MisfireRunAll)
	sp.Blackout = []string{today}
	st, _ := setup(t, sp, 5*time.Second)
	runs := runUntil(t, st, "black", func(r []store.Run) bool { return len(byState(r)[store.RunSkipped]) >= 1 })
	if q := byState(runs)[store.RunQueued]; len(q) != 0 && q[0].ScheduledAt.UTC().Format(time.DateOnly) == today {
		t.Fatalf("a run fired on a blackout date: %+v", q)
	}
}
