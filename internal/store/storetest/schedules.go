package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// ids lists the schedule ids of entries, in order.
func ids(es []store.ScheduleEntry) []int64 {
	out := make([]int64, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ScheduleListDue pages active schedules by (next fire time, id) up to a bound; ties on
// the time are split by id, so no page boundary loses or repeats a schedule.
func testScheduleListDue(t *testing.T, s store.Store) {
	// Seven schedules: due at t0 (three of them, a tie), t0+1m, t0+2m, t0+1h; one paused;
	// one not initialised; one done.
	for i := range 3 {
		apply(t, s, spec(name("tie", i), "@every 1m"))
		initAt(t, s, name("tie", i), t0)
	}
	apply(t, s, spec("m1", "@every 1m"), spec("m2", "@every 1m"), spec("h1", "@every 1m"), spec("paused", "@every 1m"),
		spec("new", "@every 1m"), spec("done", "at 2026-03-01T12:00:00Z"))
	m1 := initAt(t, s, "m1", t0.Add(time.Minute))[0]
	m2 := initAt(t, s, "m2", t0.Add(2*time.Minute))[0]
	h1 := initAt(t, s, "h1", t0.Add(time.Hour))[0]
	initAt(t, s, "paused", t0)
	must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "paused", Paused: true, Now: t0}))
	done := must[store.Job](t)(s.JobGet(ctx(t), "done")).Schedules[0]
	must[[]bool](t)(s.ScheduleInit(ctx(t), store.ScheduleInitParams{Items: []store.ScheduleInitItem{{ID: done.ID, Done: true}}}))
	var tie []int64
	for i := range 3 {
		tie = append(tie, must[store.Job](t)(s.JobGet(ctx(t), name("tie", i))).Schedules[0].ID)
	}
	want := append(append([]int64{}, tie...), m1.ID, m2.ID)

	// One read up to t0+2m: the ties by id, then m1, m2; not h1 (later), nor the paused,
	// new or done ones.
	all := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.Add(2 * time.Minute)}))
	if !equalIDs(ids(all), want) {
		t.Fatalf("ScheduleListDue = %v, want %v", ids(all), want)
	}
	if e := all[3]; e.Job != "m1" || e.Spec.Name != "m1" || e.NextFireAt == nil || !e.NextFireAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("entry %+v, want job m1 with its spec, next fire at %s", e, t0.Add(time.Minute))
	}
	// Pages of two, each after the last key of the previous one, give the same sequence.
	var paged []int64
	p := store.ScheduleListDueParams{Until: t0.Add(2 * time.Minute), Limit: 2}
	for range 10 {
		page := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), p))
		paged = append(paged, ids(page)...)
		if len(page) < p.Limit {
			break
		}
		last := page[len(page)-1]
		p.After, p.AfterID = *last.NextFireAt, last.ID
	}
	if !equalIDs(paged, want) {
		t.Fatalf("paged ScheduleListDue = %v, want %v", paged, want)
	}
	// The bound is inclusive.
	if got := ids(must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.Add(time.Hour),
		After: t0.Add(2 * time.Minute), AfterID: m2.ID}))); !equalIDs(got, []int64{h1.ID}) {
		t.Fatalf("ScheduleListDue after m2 up to t0+1h = %v, want [%d]", got, h1.ID)
	}
	// Firing moves a schedule on: it is listed at its new time.
	next := t0.Add(3 * time.Hour)
	must[[]store.FireResult](t)(s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Now: t0.Add(time.Minute),
		Items: []store.FireItem{{ScheduleID: m1.ID, Expected: *m1.NextFireAt, Next: &next, Fire: []time.Time{*m1.NextFireAt}}}}))
	got := ids(must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: next})))
	if want := append(append([]int64{}, tie...), m2.ID, h1.ID, m1.ID); !equalIDs(got, want) {
		t.Fatalf("after firing m1: ScheduleListDue = %v, want %v", got, want)
	}
}

// ScheduleListNew pages, by id, the active schedules that have no next fire time.
func testScheduleListNew(t *testing.T, s store.Store) {
	apply(t, s, spec("set", "@every 1m"))
	initAt(t, s, "set", t0)
	var fresh []int64
	for i := range 5 {
		r := apply(t, s, spec(name("new", i), "@every 1m"))
		fresh = append(fresh, r[0].Job.Schedules[0].ID)
	}
	apply(t, s, spec("paused", "@every 1m"))
	must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "paused", Paused: true, Now: t0}))

	if got := ids(must[[]store.ScheduleEntry](t)(s.ScheduleListNew(ctx(t), store.ScheduleListNewParams{}))); !equalIDs(got, fresh) {
		t.Fatalf("ScheduleListNew = %v, want %v", got, fresh)
	}
	var paged []int64
	p := store.ScheduleListNewParams{Limit: 2}
	for range 10 {
		page := must[[]store.ScheduleEntry](t)(s.ScheduleListNew(ctx(t), p))
		paged = append(paged, ids(page)...)
		if len(page) < p.Limit {
			break
		}
		p.AfterID = page[len(page)-1].ID
	}
	if !equalIDs(paged, fresh) {
		t.Fatalf("paged ScheduleListNew = %v, want %v", paged, fresh)
	}
	// Initialised, a schedule is no longer new.
	at := t0.Add(time.Minute)
	must[[]bool](t)(s.ScheduleInit(ctx(t), initOne(fresh[0], &at)))
	if got := ids(must[[]store.ScheduleEntry](t)(s.ScheduleListNew(ctx(t), store.ScheduleListNewParams{}))); !equalIDs(got, fresh[1:]) {
		t.Fatalf("after one init: ScheduleListNew = %v, want %v", got, fresh[1:])
	}
}

// A firing transaction behaves the same whether it is small (statements run directly) or
// large (statements prepared once): every item is applied or not on its own merits.
func testFireBatch(t *testing.T, s store.Store) {
	for _, size := range []int{3, 40} {
		var specs []job.Spec
		for i := range size {
			specs = append(specs, spec(name(fmt.Sprintf("b%d", size), i), "@every 1m"))
		}
		apply(t, s, specs...)
		var items []store.FireItem
		for i, sp := range specs {
			sc := initAt(t, s, sp.Name, t0)[0]
			next := t0.Add(time.Minute)
			it := store.FireItem{ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{t0}}
			switch i {
			case 0: // planned from a time the schedule is not at: not applied
				it.Expected = t0.Add(-time.Minute)
			case 1: // one run and a record of missed occurrences
				it.Records = []store.Record{{State: store.RunMissed, First: t0.Add(-3 * time.Minute), Last: t0.Add(-2 * time.Minute),
					Count: 2, Reason: "missed"}}
			}
			items = append(items, it)
		}
		res := must[[]store.FireResult](t)(s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Now: t0, Items: items}))
		if len(res) != size {
			t.Fatalf("size %d: %d results", size, len(res))
		}
		for i, r := range res {
			want := i != 0
			if r.ScheduleID != items[i].ScheduleID || r.Applied != want || (want && (len(r.Runs) != 1 || !r.Runs[0].ScheduledAt.Equal(t0))) {
				t.Fatalf("size %d, item %d: %+v, want applied=%v with one run at %s", size, i, r, want, t0)
			}
		}
		if n := countRuns(t, s, specs[0].Name); n != 0 {
			t.Fatalf("size %d: %d runs of the stale item, want none", size, n)
		}
		if n := countRuns(t, s, specs[1].Name); n != 2 {
			t.Fatalf("size %d: %d runs and records of the item with a record, want 2", size, n)
		}
	}
}

// ScheduleInit of many schedules at once (several multi-row statements) applies exactly
// to those that had no next fire time, each with its own value.
func testScheduleInitMany(t *testing.T, s store.Store) {
	const n = 1203
	var specs []job.Spec
	for i := range n {
		specs = append(specs, spec(name("init", i), "@every 1m"))
	}
	var ids []int64
	for _, r := range apply(t, s, specs...) {
		ids = append(ids, r.Job.Schedules[0].ID)
	}
	at := func(i int) *time.Time { return ptr(t0.Add(time.Duration(i) * time.Second)) }
	var first store.ScheduleInitParams
	for i := 0; i < n; i += 3 { // every third one beforehand, at an hour later
		first.Items = append(first.Items, store.ScheduleInitItem{ID: ids[i], NextFireAt: ptr(t0.Add(time.Hour))})
	}
	for i, ok := range must[[]bool](t)(s.ScheduleInit(ctx(t), first)) {
		if !ok {
			t.Fatalf("first init of item %d not applied", i)
		}
	}
	var all store.ScheduleInitParams
	for i, id := range ids {
		it := store.ScheduleInitItem{ID: id, NextFireAt: at(i)}
		if i%10 == 1 {
			it = store.ScheduleInitItem{ID: id, Done: true}
		}
		all.Items = append(all.Items, it)
	}
	applied := must[[]bool](t)(s.ScheduleInit(ctx(t), all))
	if len(applied) != n {
		t.Fatalf("%d results, want %d", len(applied), n)
	}
	for i, ok := range applied {
		if ok != (i%3 != 0) {
			t.Fatalf("item %d applied=%v, want %v", i, ok, i%3 != 0)
		}
	}
	for _, i := range []int{0, 1, 2, 11, 600, 1201, 1202} {
		sc := must[store.Job](t)(s.JobGet(ctx(t), name("init", i))).Schedules[0]
		switch {
		case i%3 == 0:
			if sc.NextFireAt == nil || !sc.NextFireAt.Equal(t0.Add(time.Hour)) || sc.Done {
				t.Fatalf("schedule %d: %+v, want kept at %s", i, sc, t0.Add(time.Hour))
			}
		case i%10 == 1:
			if sc.NextFireAt != nil || !sc.Done {
				t.Fatalf("schedule %d: %+v, want done", i, sc)
			}
		default:
			if sc.NextFireAt == nil || !sc.NextFireAt.Equal(*at(i)) || sc.Done {
				t.Fatalf("schedule %d: %+v, want next fire at %s", i, sc, at(i))
			}
		}
	}
}
