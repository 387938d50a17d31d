package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

const primaryLease = store.PrimaryLease

func errFenced(have, cur int64) error {
	return fmt.Errorf("%w: caller holds epoch %d, current epoch is %d", store.ErrFenced, have, cur)
}

func notFound(what string, key any) error {
	return fmt.Errorf("%s %v: %w", what, key, store.ErrNotFound)
}

// JobApply implements store.Store.
func (s *DB) JobApply(ctx context.Context, p store.JobApplyParams) ([]store.JobApplyResult, error) {
	seen := map[string]bool{}
	for _, def := range p.Jobs {
		if seen[def.Spec.Name] {
			return nil, fmt.Errorf("apply jobs: job %s appears twice: %w", def.Spec.Name, store.ErrConflict)
		}
		seen[def.Spec.Name] = true
	}
	enc, err := encodeAll(p)
	if err != nil {
		return nil, fmt.Errorf("apply jobs: %w", err)
	}
	var out []store.JobApplyResult
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.configWritable(ctx, tx); err != nil {
			return err
		}
		var err error
		if out, err = s.jobApplyTx(ctx, tx, p, enc); err != nil {
			return err
		}
		cs := make([]changeNew, 0, len(out))
		for _, r := range out {
			cs = append(cs, changeNew{entity: store.EntityJob, key: r.Job.Name, op: store.OpApply, def: changeOf(r.Job, false)})
		}
		return s.changesAppend(ctx, tx, cs)
	})
	if err != nil {
		return nil, fmt.Errorf("apply jobs: %w", err)
	}
	return out, nil
}

// jobApplyTx applies p's jobs in tx with their delivery lists and events; the caller
// appends their changes.
func (s *DB) jobApplyTx(ctx context.Context, tx *sql.Tx, p store.JobApplyParams, enc []encoded) ([]store.JobApplyResult, error) {
	out, err := s.jobApplyAll(ctx, tx, p, enc)
	if err != nil {
		return nil, err
	}
	if err := s.jobDeliveriesSet(ctx, tx, out); err != nil {
		return nil, err
	}
	{
		for _, r := range out {
			data := map[string]any{"job": r.Job.Name, "created": r.Created, "paused": r.Job.Paused, "schedules": len(r.Job.Schedules)}
			if p.Audit != nil {
				verb := "updated"
				if r.Created {
					verb = "created"
				}
				if err := s.auditEvent(ctx, tx, "job.applied", fmt.Sprintf("job %s %s", r.Job.Name, verb), *p.Audit, data); err != nil {
					return nil, err
				}
				continue
			}
			if err := s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: "job.applied", Now: p.Now,
				Message: fmt.Sprintf("job %s applied", r.Job.Name), Data: data}}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (s *DB) jobApply(ctx context.Context, tx *sql.Tx, def store.JobDef, p store.JobApplyParams) (store.JobApplyResult, error) {
	spec, err := json.Marshal(def.Spec)
	if err != nil {
		return store.JobApplyResult{}, fmt.Errorf("encode job %s: %w", def.Spec.Name, err)
	}
	now := micros(p.Now)
	var id int64
	created := false
	err = tx.QueryRowContext(ctx, s.q(`SELECT id FROM jobs WHERE name = ?`), def.Spec.Name).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		created = true
		err = tx.QueryRowContext(ctx, s.q(`INSERT INTO jobs (name, spec, paused, overlap, max_attempts, created_at, updated_at)
			VALUES (?, ?, 0, ?, ?, ?, ?) RETURNING id`), def.Spec.Name, string(spec), def.Spec.Overlap, 1+def.Spec.Retries, now, now).Scan(&id)
		if err != nil {
			return store.JobApplyResult{}, fmt.Errorf("insert job %s: %w", def.Spec.Name, err)
		}
	case err != nil:
		return store.JobApplyResult{}, fmt.Errorf("read job %s: %w", def.Spec.Name, err)
	default:
		if _, err := s.exec(ctx, tx, `UPDATE jobs SET spec = ?, overlap = ?, max_attempts = ?, updated_at = ? WHERE id = ?`,
			string(spec), def.Spec.Overlap, 1+def.Spec.Retries, now, id); err != nil {
			return store.JobApplyResult{}, fmt.Errorf("update job %s: %w", def.Spec.Name, err)
		}
	}
	if err := s.applySchedules(ctx, tx, id, def.Schedules); err != nil {
		return store.JobApplyResult{}, fmt.Errorf("apply schedules of %s: %w", def.Spec.Name, err)
	}
	j, err := s.jobGet(ctx, tx, def.Spec.Name)
	if err != nil {
		return store.JobApplyResult{}, err
	}
	return store.JobApplyResult{Job: j, Created: created}, nil
}

// applySchedules keeps the rows whose key is unchanged (and so their firing state),
// deletes the others and inserts the new ones with no next fire time.
func (s *DB) applySchedules(ctx context.Context, tx *sql.Tx, jobID int64, specs []store.ScheduleSpec) error {
	old, err := s.schedules(ctx, tx, jobID)
	if err != nil {
		return err
	}
	byKey := map[string][]int64{}
	for _, sc := range old {
		byKey[sc.Key] = append(byKey[sc.Key], sc.ID)
	}
	keep := map[int64]bool{}
	for i, sp := range specs {
		if ids := byKey[sp.Key]; len(ids) > 0 {
			byKey[sp.Key] = ids[1:]
			keep[ids[0]] = true
			if _, err := s.exec(ctx, tx, `UPDATE schedules SET idx = ?, expr = ? WHERE id = ?`, i, sp.Expr, ids[0]); err != nil {
				return err
			}
			continue
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO schedules (job_id, idx, key, expr, next_fire_at, done)
			VALUES (?, ?, ?, ?, NULL, 0)`, jobID, i, sp.Key, sp.Expr); err != nil {
			return err
		}
	}
	for _, sc := range old {
		if !keep[sc.ID] {
			if _, err := s.exec(ctx, tx, `DELETE FROM schedules WHERE id = ?`, sc.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *DB) schedules(ctx context.Context, qr querier, jobID int64) ([]store.Schedule, error) {
	rows, err := qr.QueryContext(ctx, s.q(`SELECT id, job_id, idx, key, expr, next_fire_at, done
		FROM schedules WHERE job_id = ? ORDER BY idx, id`), jobID)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []store.Schedule
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanSchedule(r scanner, extra ...any) (store.Schedule, error) {
	var sc store.Schedule
	var next sql.NullInt64
	var done int
	dest := append([]any{&sc.ID, &sc.JobID, &sc.Index, &sc.Key, &sc.Expr, &next, &done}, extra...)
	if err := r.Scan(dest...); err != nil {
		return sc, fmt.Errorf("scan schedule: %w", err)
	}
	sc.NextFireAt = instantPtr(next)
	sc.Done = done != 0
	return sc, nil
}

// JobGet implements store.Store.
func (s *DB) JobGet(ctx context.Context, name string) (store.Job, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.jobGet(ctx, s.db, name)
}

func (s *DB) jobGet(ctx context.Context, qr querier, name string) (store.Job, error) {
	row := qr.QueryRowContext(ctx, s.q(`SELECT id, name, spec, paused, created_at, updated_at FROM jobs WHERE name = ?`), name)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, notFound("job", name)
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("get job %s: %w", name, err)
	}
	if j.Schedules, err = s.schedules(ctx, qr, j.ID); err != nil {
		return store.Job{}, err
	}
	return j, nil
}

func scanJob(r scanner) (store.Job, error) {
	var j store.Job
	var spec string
	var paused int
	var created, updated int64
	if err := r.Scan(&j.ID, &j.Name, &spec, &paused, &created, &updated); err != nil {
		return j, err
	}
	if err := json.Unmarshal([]byte(spec), &j.Spec); err != nil {
		return j, fmt.Errorf("decode job %s: %w", j.Name, err)
	}
	j.Paused = paused != 0
	j.CreatedAt, j.UpdatedAt = instant(created), instant(updated)
	return j, nil
}

// JobList implements store.Store.
func (s *DB) JobList(ctx context.Context) ([]store.Job, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.jobListTx(ctx, s.db)
}

func (s *DB) jobListTx(ctx context.Context, qr querier) ([]store.Job, error) {
	rows, err := qr.QueryContext(ctx, s.q(`SELECT id, name, spec, paused, created_at, updated_at FROM jobs ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var jobs []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	all, err := qr.QueryContext(ctx, s.q(`SELECT id, job_id, idx, key, expr, next_fire_at, done FROM schedules ORDER BY job_id, idx, id`))
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer all.Close()
	byJob := map[int64][]store.Schedule{}
	for all.Next() {
		sc, err := scanSchedule(all)
		if err != nil {
			return nil, err
		}
		byJob[sc.JobID] = append(byJob[sc.JobID], sc)
	}
	for i := range jobs {
		jobs[i].Schedules = byJob[jobs[i].ID]
	}
	return jobs, all.Err()
}

// JobDelete implements store.Store. Runs stay as history; the job's queued runs are
// canceled.
func (s *DB) JobDelete(ctx context.Context, p store.JobDeleteParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.configWritable(ctx, tx); err != nil {
			return err
		}
		if err := s.jobDeleteTx(ctx, tx, p); err != nil {
			return err
		}
		return s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityJob, key: p.Name, op: store.OpDelete}})
	})
}

// jobDeleteTx deletes a job in tx with its event; the caller appends the change.
func (s *DB) jobDeleteTx(ctx context.Context, tx *sql.Tx, p store.JobDeleteParams) error {
	name := p.Name
	{
		var id int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM jobs WHERE name = ?`), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("job", name)
		}
		if err != nil {
			return fmt.Errorf("delete job %s: %w", name, err)
		}
		if err := s.jobDeliveriesDelete(ctx, tx, id); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM schedules WHERE job_id = ?`, `DELETE FROM jobs WHERE id = ?`} {
			if _, err := s.exec(ctx, tx, q, id); err != nil {
				return fmt.Errorf("delete job %s: %w", name, err)
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE runs SET state = 'canceled', reason = 'job deleted', finished_at = created_at
			WHERE job_id = ? AND state = 'queued'`, id); err != nil {
			return fmt.Errorf("cancel queued runs of %s: %w", name, err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_held WHERE job = ?`, name); err != nil {
			return fmt.Errorf("delete job %s: %w", name, err)
		}
		if p.Audit != nil {
			return s.auditEvent(ctx, tx, "job.deleted", "job "+name+" deleted", *p.Audit, map[string]any{"job": name})
		}
		return s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: "job.deleted", Now: time.Now(),
			Message: fmt.Sprintf("job %s deleted", name), Data: map[string]any{"job": name}}})
	}
}

// JobSetPaused implements store.Store.
func (s *DB) JobSetPaused(ctx context.Context, p store.JobSetPausedParams) (store.Job, error) {
	var j store.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.configWritable(ctx, tx); err != nil {
			return err
		}
		var err error
		if j, err = s.jobSetPausedTx(ctx, tx, p); err != nil {
			return err
		}
		op := store.OpResume
		if p.Paused {
			op = store.OpPause
		}
		return s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityJob, key: p.Name, op: op, def: changeOf(j, false)}})
	})
	return j, err
}

// jobSetPausedTx pauses or resumes a job in tx with its event; the caller appends the
// change.
func (s *DB) jobSetPausedTx(ctx context.Context, tx *sql.Tx, p store.JobSetPausedParams) (store.Job, error) {
	var j store.Job
	err := func() error {
		n, err := s.exec(ctx, tx, `UPDATE jobs SET paused = ?, updated_at = ? WHERE name = ?`, boolInt(p.Paused), micros(p.Now), p.Name)
		if err != nil {
			return fmt.Errorf("pause job %s: %w", p.Name, err)
		}
		if n == 0 {
			return notFound("job", p.Name)
		}
		if !p.Paused {
			// Resumed schedules start from now: the paused time is neither fired nor missed.
			if _, err := s.exec(ctx, tx, `UPDATE schedules SET next_fire_at = NULL, done = 0
				WHERE job_id = (SELECT id FROM jobs WHERE name = ?)`, p.Name); err != nil {
				return fmt.Errorf("restart schedules of %s: %w", p.Name, err)
			}
		}
		if p.Audit != nil {
			typ, verb := "job.resumed", "resumed"
			if p.Paused {
				typ, verb = "job.paused", "paused"
			}
			if err := s.auditEvent(ctx, tx, typ, "job "+p.Name+" "+verb, *p.Audit, map[string]any{"job": p.Name}); err != nil {
				return err
			}
		}
		j, err = s.jobGet(ctx, tx, p.Name)
		return err
	}()
	return j, err
}
