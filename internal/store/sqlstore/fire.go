package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// OccurrenceFire implements store.Store. Each item is applied only if the schedule's
// next_fire_at still equals Expected (compare-and-set), so an occurrence fires once even
// when two schedulers race; the unique (schedule, scheduled_at) index backs that up.
func (s *DB) OccurrenceFire(ctx context.Context, p store.OccurrenceFireParams) ([]store.FireResult, error) {
	var out []store.FireResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = make([]store.FireResult, 0, len(p.Items))
		if err := s.checkEpoch(ctx, tx, p.Epoch); err != nil {
			return err
		}
		specs := map[int64]job.Spec{}
		for _, it := range p.Items {
			res, err := s.fireOne(ctx, tx, p, it, specs)
			if err != nil {
				return fmt.Errorf("fire schedule %d: %w", it.ScheduleID, err)
			}
			out = append(out, res)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire occurrences: %w", err)
	}
	return out, nil
}

func (s *DB) fireOne(ctx context.Context, tx *sql.Tx, p store.OccurrenceFireParams, it store.FireItem, specs map[int64]job.Spec) (store.FireResult, error) {
	res := store.FireResult{ScheduleID: it.ScheduleID}
	k, err := s.exec(ctx, tx, `UPDATE schedules SET next_fire_at = ?, done = ? WHERE id = ? AND next_fire_at = ? AND done = 0`,
		microsPtr(it.Next), boolInt(it.Done), it.ScheduleID, micros(it.Expected))
	if err != nil {
		return res, err
	}
	if k == 0 {
		return res, nil // moved on or gone: someone else fired it
	}
	res.Applied = true
	var jobID int64
	var name, specText string
	var paused int
	err = tx.QueryRowContext(ctx, s.q(`SELECT j.id, j.name, j.spec, j.paused FROM schedules s JOIN jobs j ON j.id = s.job_id WHERE s.id = ?`),
		it.ScheduleID).Scan(&jobID, &name, &specText, &paused)
	if err != nil {
		return res, fmt.Errorf("read job: %w", err)
	}
	if paused != 0 {
		return res, nil
	}
	spec, ok := specs[jobID]
	if !ok {
		if err := json.Unmarshal([]byte(specText), &spec); err != nil {
			return res, fmt.Errorf("decode job %s: %w", name, err)
		}
		specs[jobID] = spec
	}
	for _, rec := range it.Records {
		if err := s.insertRecord(ctx, tx, jobID, name, spec, it.ScheduleID, rec, p); err != nil {
			return res, err
		}
	}
	for _, at := range it.Fire {
		at := at
		id, ok, err := s.insertRun(ctx, tx, newRun{job: jobID, name: name, spec: spec, schedule: it.ScheduleID,
			scheduled: &at, trigger: store.TriggerSchedule, now: p.Now})
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		run, err := s.runGet(ctx, tx, id)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// insertRecord stores a stretch of occurrences that became no run (missed or skipped).
func (s *DB) insertRecord(ctx context.Context, tx *sql.Tx, jobID int64, name string, spec job.Spec, schedID int64, rec store.Record, p store.OccurrenceFireParams) error {
	if !rec.State.Final() || rec.Count <= 0 {
		return fmt.Errorf("record %s of %d occurrences: %w", rec.State, rec.Count, errors.New("invalid record"))
	}
	_, err := s.exec(ctx, tx, `INSERT INTO runs (job_id, job, schedule_id, scheduled_at, scheduled_until, occurrences, trigger, state,
		max_attempts, created_at, not_before, finished_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		jobID, name, schedID, micros(rec.First), micros(rec.Last), rec.Count, store.TriggerSchedule, string(rec.State),
		1+spec.Retries, micros(p.Now), micros(p.Now), micros(p.Now), rec.Reason)
	if err != nil {
		return fmt.Errorf("record %s occurrences: %w", rec.State, err)
	}
	return nil
}
