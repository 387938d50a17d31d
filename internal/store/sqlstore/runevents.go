package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"

	"github.com/tandemhq/tandem/internal/store"
)

// Run events, written in the transaction that changes the run: run.succeeded,
// run.failed (its last attempt), run.canceled, run.skipped and run.missed when a run
// becomes final, run.retrying when a failed attempt queues it again. Each is recorded
// once per run (per attempt for run.retrying), however often the change is offered.

// runEvents records the events of the runs with the given ids as they are now in tx.
func (s *DB) runEvents(ctx context.Context, tx *sql.Tx, ids []int64) error {
	var evs []store.EventAppendParams
	for chunk := range slices.Chunk(ids, batchRows) {
		in, args := s.idIn("id", chunk)
		runs, err := s.runs(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE `+in, args...)
		if err != nil {
			return fmt.Errorf("read runs for their events: %w", err)
		}
		for _, r := range runs {
			if e, ok := RunEvent(r); ok {
				evs = append(evs, e)
			}
		}
	}
	return s.eventsInsert(ctx, tx, evs)
}

// RunEvent is the event a run in its present state raises, if any: documented in
// internal/notify (the event schema).
func RunEvent(r store.Run) (store.EventAppendParams, bool) {
	data := map[string]any{"run": r.ID, "job": r.Job, "state": string(r.State), "attempt": r.Attempt,
		"max_attempts": r.MaxAttempts, "reason": r.Reason, "trigger": r.Trigger, "exit_code": r.ExitCode}
	if r.ScheduledAt != nil {
		data["scheduled_at"] = r.ScheduledAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	} else {
		data["scheduled_at"] = ""
	}
	id := strconv.FormatInt(r.ID, 10)
	e := store.EventAppendParams{Node: r.Node, Data: data}
	switch {
	case r.State.Final():
		e.Type, e.Dedup = "run."+string(r.State), "run/"+id+"/end"
		e.Message = fmt.Sprintf("run %d of %s %s", r.ID, r.Job, r.State)
		if r.FinishedAt != nil {
			e.Now = *r.FinishedAt
		}
		if r.State == store.RunFailed {
			e.Message += fmt.Sprintf(" (attempt %d of %d)", r.Attempt, r.MaxAttempts)
		}
	case r.State == store.RunQueued && r.Attempt > 0:
		e.Type, e.Dedup = "run.retrying", "run/"+id+"/retry/"+strconv.Itoa(r.Attempt)
		e.Message = fmt.Sprintf("run %d of %s failed attempt %d of %d; retrying", r.ID, r.Job, r.Attempt, r.MaxAttempts)
		e.Now = r.NotBefore
	default:
		return e, false
	}
	if r.Reason != "" {
		e.Message += ": " + r.Reason
	}
	return e, true
}
