package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// A large apply, mixing new jobs (inserted many per statement) with existing ones
// (updated), returns for each job exactly what JobGet reads back, in the order given.
func testJobApplyMany(t *testing.T, s store.Store) {
	apply(t, s, spec("old-1", "@hourly"), spec("old-2", "@daily", "@hourly"))
	kept := initAt(t, s, "old-2", t0)
	var p store.JobApplyParams
	p.Now = t0
	const n = 1203 // more than two multi-row statements' worth
	for i := range n {
		switch i {
		case 7:
			p.Jobs = append(p.Jobs, def(spec("old-2", "@hourly", "@weekly"))) // keeps @hourly's state
		case 600:
			p.Jobs = append(p.Jobs, def(spec("old-1", "@hourly")))
		default:
			exprs := []string{fmt.Sprintf("%d * * * *", i%60)}
			if i%3 == 0 {
				exprs = append(exprs, "@daily", "@every 1m")
			}
			p.Jobs = append(p.Jobs, def(spec(name("many", i), exprs...)))
		}
	}
	res := must[[]store.JobApplyResult](t)(s.JobApply(ctx(t), p))
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	ids := map[int64]bool{}
	for i, r := range res {
		want := p.Jobs[i].Spec.Name
		if r.Job.Name != want || r.Created != (want != "old-1" && want != "old-2") {
			t.Fatalf("result %d: job %s created=%v, want %s", i, r.Job.Name, r.Created, want)
		}
		got := must[store.Job](t)(s.JobGet(ctx(t), want))
		if !reflect.DeepEqual(r.Job, got) {
			t.Fatalf("result %d:\n%+v\nJobGet:\n%+v", i, r.Job, got)
		}
		for k, sc := range got.Schedules {
			if ids[sc.ID] || sc.Index != k || sc.Expr != p.Jobs[i].Spec.Schedule[k] {
				t.Fatalf("job %s schedule %d: %+v", want, k, sc)
			}
			ids[sc.ID] = true
		}
	}
	if j := res[7].Job; j.Schedules[0].ID != kept[1].ID || j.Schedules[0].NextFireAt == nil || j.Schedules[1].NextFireAt != nil {
		t.Fatalf("updated job old-2: %+v, want @hourly kept (id %d, next fire set) and @weekly new", j.Schedules, kept[1].ID)
	}
	if got := len(must[[]store.Job](t)(s.JobList(ctx(t)))); got != n {
		t.Fatalf("JobList: %d jobs, want %d", got, n)
	}
}
