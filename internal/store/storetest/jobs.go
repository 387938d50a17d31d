package storetest

import (
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func testJobApplyCreateUpdate(t *testing.T, s store.Store) {
	res := apply(t, s, spec("a", "@every 1m", "0 7 * * *"))
	if !res[0].Created || len(res[0].Job.Schedules) != 2 {
		t.Fatalf("first apply: created=%v schedules=%d", res[0].Created, len(res[0].Job.Schedules))
	}
	v1 := must[int64](t)(s.ConfigVersion(ctx(t)))
	kept := initAt(t, s, "a", t0)
	// Re-apply with one schedule unchanged and one new: the unchanged one keeps its state.
	sp := spec("a", "0 7 * * *", "@hourly")
	sp.Retries = 2
	res = apply(t, s, sp)
	if res[0].Created {
		t.Fatal("second apply: created = true, want an update")
	}
	j := res[0].Job
	if j.Spec.Retries != 2 || len(j.Schedules) != 2 {
		t.Fatalf("updated job: retries=%d schedules=%d", j.Spec.Retries, len(j.Schedules))
	}
	if j.Schedules[0].ID != kept[1].ID || j.Schedules[0].NextFireAt == nil || !j.Schedules[0].NextFireAt.Equal(t0) {
		t.Fatalf("unchanged schedule lost its state: %+v (was %+v)", j.Schedules[0], kept[1])
	}
	if j.Schedules[1].Expr != "@hourly" || j.Schedules[1].NextFireAt != nil {
		t.Fatalf("new schedule: %+v", j.Schedules[1])
	}
	if v2 := must[int64](t)(s.ConfigVersion(ctx(t))); v2 <= v1 {
		t.Fatalf("config version %d after apply, was %d", v2, v1)
	}
	list := must[[]store.Job](t)(s.JobList(ctx(t)))
	if len(list) != 1 || len(list[0].Schedules) != 2 {
		t.Fatalf("JobList = %+v", list)
	}
}

func testJobApplyAllOrNothing(t *testing.T, s store.Store) {
	apply(t, s, spec("keep", "@hourly"))
	// A name twice in one apply is refused as a whole: not even "new" is stored.
	_, err := s.JobApply(ctx(t), store.JobApplyParams{Now: t0, Jobs: []store.JobDef{
		def(spec("new", "@daily")), def(spec("keep", "@daily")), def(spec("keep", "@weekly"))}})
	wantErr(t, err, store.ErrConflict)
	if _, err := s.JobGet(ctx(t), "new"); err == nil {
		t.Fatal("failed apply left job 'new' behind")
	}
	j := must[store.Job](t)(s.JobGet(ctx(t), "keep"))
	if j.Spec.Schedule[0] != "@hourly" || j.Schedules[0].Expr != "@hourly" {
		t.Fatalf("failed apply changed job: %v", j.Spec.Schedule)
	}
}

func testJobDeleteAndPause(t *testing.T, s store.Store) {
	apply(t, s, spec("p", "@every 1m"), spec("d", "@every 1m"))
	initAt(t, s, "p", t0)
	if got := activeSchedules(t, s); got != 2 {
		t.Fatalf("active schedules = %d entries, want 2", got)
	}
	j := must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "p", Paused: true, Now: t0}))
	if !j.Paused {
		t.Fatal("job not paused")
	}
	if got := activeSchedules(t, s); got != 1 {
		t.Fatalf("active schedules with a paused job = %d entries, want 1", got)
	}
	j = must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "p", Paused: false, Now: t0}))
	if j.Paused || j.Schedules[0].NextFireAt != nil {
		t.Fatalf("resumed job: paused=%v next=%v (want restart from now)", j.Paused, j.Schedules[0].NextFireAt)
	}
	must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "d", Now: t0}))
	if err := s.JobDelete(ctx(t), store.JobDeleteParams{Name: "d"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.JobGet(ctx(t), "d")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.JobDelete(ctx(t), store.JobDeleteParams{Name: "d"}), store.ErrNotFound)
	_, err = s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "nope", Paused: true, Now: t0})
	wantErr(t, err, store.ErrNotFound)
	runs := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Job: "d"}))
	if len(runs) != 1 || runs[0].State != store.RunCanceled {
		t.Fatalf("runs of a deleted job: %+v, want one canceled run kept as history", runs)
	}
}

func testScheduleInitOnce(t *testing.T, s store.Store) {
	apply(t, s, spec("i", "@every 1m"))
	sc := must[store.Job](t)(s.JobGet(ctx(t), "i")).Schedules[0]
	a, b := t0, t0.Add(time.Hour)
	if !must[[]bool](t)(s.ScheduleInit(ctx(t), initOne(sc.ID, &a)))[0] {
		t.Fatal("first init not applied")
	}
	if must[[]bool](t)(s.ScheduleInit(ctx(t), initOne(sc.ID, &b)))[0] {
		t.Fatal("second init applied over a set next fire time")
	}
	got := must[store.Job](t)(s.JobGet(ctx(t), "i")).Schedules[0].NextFireAt
	if !got.Equal(a) {
		t.Fatalf("next fire = %v, want %v", got, a)
	}
}

func testTimes(t *testing.T, s store.Store) {
	apply(t, s, spec("tz", "@every 1m"))
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo")
	}
	local := time.Date(2026, 10, 25, 2, 30, 0, 123456000, berlin) // an ambiguous wall time
	sc := must[store.Job](t)(s.JobGet(ctx(t), "tz")).Schedules[0]
	must[[]bool](t)(s.ScheduleInit(ctx(t), initOne(sc.ID, &local)))
	got := *must[store.Job](t)(s.JobGet(ctx(t), "tz")).Schedules[0].NextFireAt
	if !got.Equal(local) || got.Location() != time.UTC {
		t.Fatalf("stored %v, read back %v (want the same instant, in UTC)", local, got)
	}
}

// activeSchedules counts the schedules a scheduler would see: due ones and new ones.
func activeSchedules(t *testing.T, s store.Store) int {
	t.Helper()
	due := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.AddDate(100, 0, 0)}))
	fresh := must[[]store.ScheduleEntry](t)(s.ScheduleListNew(ctx(t), store.ScheduleListNewParams{}))
	return len(due) + len(fresh)
}
