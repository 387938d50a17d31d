package notify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// runLongMinRuns is how many succeeded runs a job needs before twice their median
// duration counts as long.
const runLongMinRuns = 3

// watchRuns raises run.late and run.long for the running runs, every Watch. Each is
// recorded once per run (a dedup key), whichever primary sees it first.
func (n *Notifier) watchRuns(ctx context.Context) error {
	now := n.p.Now()
	if now.Sub(n.watch) < n.p.Watch {
		return nil
	}
	n.watch = now
	runs, err := n.p.Store.RunList(ctx, store.RunListParams{States: []store.RunState{store.RunRunning}, Limit: 1000})
	if err != nil {
		return err
	}
	jobs := map[string]*store.Job{}
	medians := map[string]time.Duration{}
	for _, r := range runs {
		if r.StartedAt == nil {
			continue
		}
		j, ok := jobs[r.Job]
		if !ok {
			if got, err := n.p.Store.JobGet(ctx, r.Job); err == nil {
				j = &got
			}
			jobs[r.Job] = j
		}
		if j == nil {
			continue
		}
		if late := j.Spec.LateAfter.D(); late > 0 && r.ScheduledAt != nil && r.StartedAt.Sub(*r.ScheduledAt) > late {
			by := r.StartedAt.Sub(*r.ScheduledAt)
			n.raise(ctx, r, "run.late", fmt.Sprintf("run %d of %s started %s after its scheduled time (late_after %s)", r.ID, r.Job,
				by.Round(time.Second), late), map[string]any{"late_seconds": int(by.Seconds()), "late_after_seconds": int(late.Seconds())})
		}
		med, ok := medians[r.Job]
		if !ok {
			med = n.median(ctx, r.Job)
			medians[r.Job] = med
		}
		limit := j.Spec.LongAfter.D()
		if med > 0 && (limit == 0 || 2*med < limit) {
			limit = 2 * med
		}
		if running := now.Sub(*r.StartedAt); limit > 0 && running > limit {
			n.raise(ctx, r, "run.long", fmt.Sprintf("run %d of %s has been running for %s (limit %s)", r.ID, r.Job,
				running.Round(time.Second), limit.Round(time.Second)),
				map[string]any{"running_seconds": int(running.Seconds()), "limit_seconds": int(limit.Seconds()), "median_seconds": int(med.Seconds())})
		}
	}
	return nil
}

// median is the median duration of the job's last 20 succeeded runs (0: fewer than 3).
func (n *Notifier) median(ctx context.Context, jobName string) time.Duration {
	runs, err := n.p.Store.RunList(ctx, store.RunListParams{Job: jobName, States: []store.RunState{store.RunSucceeded}, Limit: 20})
	if err != nil {
		return 0
	}
	var ds []time.Duration
	for _, r := range runs {
		if r.StartedAt != nil && r.FinishedAt != nil {
			ds = append(ds, r.FinishedAt.Sub(*r.StartedAt))
		}
	}
	if len(ds) < runLongMinRuns {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func (n *Notifier) raise(ctx context.Context, r store.Run, typ, msg string, more map[string]any) {
	data := map[string]any{"run": r.ID, "job": r.Job, "state": string(r.State), "attempt": r.Attempt, "max_attempts": r.MaxAttempts,
		"reason": r.Reason, "trigger": r.Trigger, "exit_code": nil, "scheduled_at": ""}
	if r.ScheduledAt != nil {
		data["scheduled_at"] = r.ScheduledAt.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range more {
		data[k] = v
	}
	err := n.p.Store.EventAppend(ctx, store.EventAppendParams{Type: typ, Node: r.Node, Message: msg, Data: data, Now: n.p.Now(),
		Dedup: "run/" + strconv.FormatInt(r.ID, 10) + "/" + typ[len("run."):]})
	if err != nil {
		n.p.Log.Warn("cannot record "+typ, "run", r.ID, "err", err)
	}
}
