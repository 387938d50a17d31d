package history

import (
	"fmt"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// Policy is what Check needs of a job's timing policies.
type Policy struct {
	Misfire string        // skip, run-once or run-all
	Grace   time.Duration // misfire_grace: an occurrence late by at most this fires normally
	Window  time.Duration // misfire_window (run-all): older misfired occurrences are missed; 0: no limit
	Overlap string        // allow, forbid, queue or replace
}

// policySlack absorbs the rounding of times to the repository's microseconds.
const policySlack = time.Millisecond

// checkPolicy judges each scheduled time against the job's policies, using what the
// firing primary wrote: a fired run's or a record's created_at is the instant the
// primary planned at, so "late" is exactly what the primary saw.
//
//   - a missed record holds only occurrences late by more than the grace (under run-all,
//     also more than the window);
//   - under run-once, the occurrence after a missed record was fired in the same plan
//     (the latest misfired occurrence fires);
//   - a run fired late by more than the grace: never under skip; under run-all only within
//     the window; under run-once only if it was the latest misfired occurrence;
//   - a run skipped for overlap only under forbid; a run replaced only under replace.
func checkPolicy(h Job, runs []wire.Run, add func(string, string, []wire.Run)) {
	p := h.Policy
	if p == nil || h.Step <= 0 {
		return
	}
	at := map[time.Time]wire.Run{} // scheduled time → the run or record that starts there
	for _, r := range runs {
		if r.ScheduledAt != nil {
			at[*r.ScheduledAt] = r
		}
	}
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	for _, r := range runs {
		sched, last, ok := Span(r)
		if !ok {
			continue
		}
		switch {
		case r.State == "missed":
			late := r.CreatedAt.Sub(last)
			if late <= p.Grace-policySlack {
				add("misfire", fmt.Sprintf("run %d records %s..%s as missed, but the last was only %s late (misfire_grace %s)",
					r.ID, sched.Format("15:04:05.000"), last.Format("15:04:05.000"), ms(late), p.Grace), []wire.Run{r})
			}
			if p.Misfire == "run-all" && (p.Window == 0 || late <= p.Window-policySlack) {
				add("misfire", fmt.Sprintf("run %d records %s..%s as missed under run-all, but the last was %s late (misfire_window %s)",
					r.ID, sched.Format("15:04:05.000"), last.Format("15:04:05.000"), ms(late), p.Window), []wire.Run{r})
			}
			if p.Misfire == "run-once" {
				next, ok := at[last.Add(h.Step)]
				if !ok || next.State == "missed" || next.CreatedAt.Sub(r.CreatedAt).Abs() > policySlack {
					add("misfire", fmt.Sprintf("run %d records %s..%s as missed under run-once, but the next occurrence %s was not fired in the same plan",
						r.ID, sched.Format("15:04:05.000"), last.Format("15:04:05.000"), last.Add(h.Step).Format("15:04:05.000")),
						aroundTime(runs, sched, last, h.Step))
				}
			}
		case r.State == "skipped" && strings.HasPrefix(r.Reason, "blackout"):
			// a blackout date: no policy of this job's is involved
		default:
			late := r.CreatedAt.Sub(sched)
			if late > p.Grace+policySlack {
				switch p.Misfire {
				case "skip":
					add("misfire", fmt.Sprintf("run %d for %s fired %s late under skip (misfire_grace %s)",
						r.ID, sched.Format("15:04:05.000"), ms(late), p.Grace), []wire.Run{r})
				case "run-all":
					if p.Window > 0 && late > p.Window+policySlack {
						add("misfire", fmt.Sprintf("run %d for %s fired %s late under run-all (misfire_window %s)",
							r.ID, sched.Format("15:04:05.000"), ms(late), p.Window), []wire.Run{r})
					}
				case "run-once":
					if next := sched.Add(h.Step); r.CreatedAt.Sub(next) > p.Grace+policySlack {
						add("misfire", fmt.Sprintf("run %d for %s fired %s late under run-once, but %s had misfired too: only the latest fires",
							r.ID, sched.Format("15:04:05.000"), ms(late), next.Format("15:04:05.000")), aroundTime(runs, sched, next, h.Step))
					}
				}
			}
			if r.State == "skipped" && p.Overlap != "forbid" {
				add("overlap", fmt.Sprintf("run %d was skipped (%s) under overlap %s", r.ID, r.Reason, p.Overlap), []wire.Run{r})
			}
			if r.State == "canceled" && strings.Contains(r.Reason, "replaced") && p.Overlap != "replace" {
				add("overlap", fmt.Sprintf("run %d was replaced (%s) under overlap %s", r.ID, r.Reason, p.Overlap), []wire.Run{r})
			}
		}
	}
}
