package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// firing holds the statements of one firing transaction. For a burst of due schedules,
// the scheduler's hot path, they are prepared once per transaction; a small batch runs
// them directly, because preparing and closing costs round trips of its own (PostgreSQL's
// driver caches prepared statements per connection anyway).
type firing struct {
	s              *DB
	tx             *sql.Tx
	p              store.OccurrenceFireParams
	cas, jobs, ins stmt
	jobInfo        map[int64]jobInfo
}

// PrepareMinDefault is the batch size from which a firing transaction prepares its
// statements.
const PrepareMinDefault = 8

// stmt is a statement of a firing transaction, prepared or not.
type stmt struct {
	tx *sql.Tx
	q  string
	st *sql.Stmt // nil: not prepared
}

func (s stmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	if s.st != nil {
		return s.st.QueryRowContext(ctx, args...)
	}
	return s.tx.QueryRowContext(ctx, s.q, args...)
}

type jobInfo struct {
	name        string
	paused      bool
	overlap     string
	maxAttempts int
}

// OccurrenceFire implements store.Store. Each item is applied only if the schedule's
// next_fire_at still equals Expected (compare-and-set), so an occurrence fires once even
// when two schedulers race; the unique (schedule, scheduled_at) index backs that up.
func (s *DB) OccurrenceFire(ctx context.Context, p store.OccurrenceFireParams) ([]store.FireResult, error) {
	var out []store.FireResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = make([]store.FireResult, 0, len(p.Items))
		if err := s.checkLeaseEpoch(ctx, tx, cmp.Or(p.Lease, primaryLease), p.Epoch); err != nil {
			return err
		}
		f := &firing{s: s, tx: tx, p: p, jobInfo: map[int64]jobInfo{}}
		if err := f.prepare(ctx); err != nil {
			return err
		}
		defer f.close()
		for _, it := range p.Items {
			res, err := f.fire(ctx, it)
			if err != nil {
				return fmt.Errorf("fire schedule %d: %w", it.ScheduleID, err)
			}
			out = append(out, res)
		}
		for _, r := range out {
			if len(r.Runs) > 0 {
				return s.notify(ctx, tx, TopicRuns, "")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire occurrences: %w", err)
	}
	return out, nil
}

func (f *firing) prepare(ctx context.Context) error {
	var err error
	prep := func(q string) stmt {
		st := stmt{tx: f.tx, q: f.s.q(q)}
		if err != nil || len(f.p.Items) < PrepareMinDefault {
			return st
		}
		st.st, err = f.tx.PrepareContext(ctx, st.q)
		return st
	}
	f.cas = prep(`UPDATE schedules SET next_fire_at = ?, done = ? WHERE id = ? AND next_fire_at = ? AND done = 0 RETURNING job_id`)
	f.jobs = prep(`SELECT name, paused, overlap, max_attempts FROM jobs WHERE id = ?`)
	f.ins = prep(`INSERT INTO runs (job_id, job, schedule_id, scheduled_at, occurrences, trigger, state, max_attempts, created_at, not_before, epoch)
		VALUES (?, ?, ?, ?, 1, 'schedule', 'queued', ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING ` + runColumns)
	if err != nil {
		f.close()
		return fmt.Errorf("prepare firing: %w", err)
	}
	return nil
}

func (f *firing) close() {
	for _, st := range []stmt{f.cas, f.jobs, f.ins} {
		if st.st != nil {
			st.st.Close()
		}
	}
}

func (f *firing) fire(ctx context.Context, it store.FireItem) (store.FireResult, error) {
	res := store.FireResult{ScheduleID: it.ScheduleID}
	var jobID int64
	err := f.cas.QueryRowContext(ctx, microsPtr(it.Next), boolInt(it.Done), it.ScheduleID, micros(it.Expected)).Scan(&jobID)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil // moved on or gone: someone else fired it
	}
	if err != nil {
		return res, err
	}
	res.Applied = true
	info, ok := f.jobInfo[jobID]
	if !ok {
		var paused int
		if err := f.jobs.QueryRowContext(ctx, jobID).Scan(&info.name, &paused, &info.overlap, &info.maxAttempts); err != nil {
			return res, fmt.Errorf("read job %d: %w", jobID, err)
		}
		info.paused = paused != 0
		f.jobInfo[jobID] = info
	}
	if info.paused {
		return res, nil
	}
	for _, rec := range it.Records {
		if err := f.s.insertRecord(ctx, f.tx, jobID, info, it.ScheduleID, rec, f.p); err != nil {
			return res, err
		}
	}
	now := micros(f.p.Now)
	for _, at := range it.Fire {
		var run store.Run
		var err error
		if info.overlap == job.OverlapAllow || info.overlap == job.OverlapQueue {
			// No policy to apply at insert time ("queue" is the dispatcher's business).
			run, err = scanRun(f.ins.QueryRowContext(ctx, jobID, info.name, it.ScheduleID, micros(at), info.maxAttempts, now, now, f.p.Epoch))
			if errors.Is(err, sql.ErrNoRows) {
				continue // this occurrence exists already
			}
		} else {
			at := at
			var id int64
			var inserted bool
			id, inserted, err = f.s.insertRun(ctx, f.tx, newRun{job: jobID, name: info.name, overlap: info.overlap,
				maxAttempts: info.maxAttempts, schedule: it.ScheduleID, scheduled: &at, trigger: store.TriggerSchedule, now: f.p.Now, epoch: f.p.Epoch})
			if err == nil && !inserted {
				continue
			}
			if err == nil {
				run, err = f.s.runGet(ctx, f.tx, id)
			}
		}
		if err != nil {
			return res, fmt.Errorf("insert occurrence %s: %w", at, err)
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// insertRecord stores a stretch of occurrences that became no run (missed or skipped).
func (s *DB) insertRecord(ctx context.Context, tx *sql.Tx, jobID int64, info jobInfo, schedID int64, rec store.Record, p store.OccurrenceFireParams) error {
	if !rec.State.Final() || rec.Count <= 0 {
		return fmt.Errorf("record %s of %d occurrences: invalid record", rec.State, rec.Count)
	}
	_, err := s.exec(ctx, tx, `INSERT INTO runs (job_id, job, schedule_id, scheduled_at, scheduled_until, occurrences, trigger, state,
		max_attempts, created_at, not_before, finished_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		jobID, info.name, schedID, micros(rec.First), micros(rec.Last), rec.Count, store.TriggerSchedule, string(rec.State),
		info.maxAttempts, micros(p.Now), micros(p.Now), micros(p.Now), rec.Reason)
	if err != nil {
		return fmt.Errorf("record %s occurrences: %w", rec.State, err)
	}
	first := rec.First.UTC().Format(time.RFC3339Nano)
	msg := fmt.Sprintf("%d occurrences of %s %s from %s to %s", rec.Count, info.name, rec.State, first, rec.Last.UTC().Format(time.RFC3339Nano))
	if rec.Count == 1 {
		msg = fmt.Sprintf("occurrence %s of %s %s", first, info.name, rec.State)
	}
	if rec.Reason != "" {
		msg += ": " + rec.Reason
	}
	return s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: "run." + string(rec.State), Now: p.Now, Message: msg,
		Dedup: fmt.Sprintf("occurrence/%d/%d/%s", schedID, rec.First.UnixMicro(), rec.State),
		Data: map[string]any{"run": 0, "job": info.name, "state": string(rec.State), "attempt": 0, "max_attempts": info.maxAttempts,
			"reason": rec.Reason, "trigger": store.TriggerSchedule, "exit_code": nil, "scheduled_at": first,
			"scheduled_until": rec.Last.UTC().Format(time.RFC3339Nano), "occurrences": rec.Count}}})
}
