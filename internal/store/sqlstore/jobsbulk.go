package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// BulkRowsDefault is how many rows one multi-row statement of JobApply carries at most:
// with six parameters a row, far below SQLite's 32766 and PostgreSQL's 65535.
const BulkRowsDefault = 500

// encoded is a job's spec as stored, and as a later read decodes it.
type encoded struct {
	text string
	spec job.Spec
}

// encodeAll encodes every job's spec, before the transaction: a PostgreSQL session idle
// in a transaction is ended after a second, so the transaction does no heavy work of its
// own between statements.
func encodeAll(p store.JobApplyParams) ([]encoded, error) {
	out := make([]encoded, len(p.Jobs))
	for i, def := range p.Jobs {
		b, err := json.Marshal(def.Spec)
		if err != nil {
			return nil, fmt.Errorf("encode job %s: %w", def.Spec.Name, err)
		}
		out[i].text = string(b)
		if err := json.Unmarshal(b, &out[i].spec); err != nil {
			return nil, fmt.Errorf("decode job %s: %w", def.Spec.Name, err)
		}
	}
	return out, nil
}

// jobApplyAll applies p's jobs in tx; enc holds their encoded specs. Jobs that exist already are updated one by one
// (their schedules are matched by key); new jobs, the bulk of a large file, are inserted
// with their schedules by multi-row statements, so that applying thousands of jobs takes
// a handful of statements and holds the write lock (SQLite) or the connection
// (PostgreSQL) briefly.
func (s *DB) jobApplyAll(ctx context.Context, tx *sql.Tx, p store.JobApplyParams, enc []encoded) ([]store.JobApplyResult, error) {
	names := make([]any, 0, len(p.Jobs))
	for _, def := range p.Jobs {
		names = append(names, def.Spec.Name)
	}
	existing := map[string]bool{}
	for lo := 0; lo < len(names); lo += BulkRowsDefault {
		chunk := names[lo:min(lo+BulkRowsDefault, len(names))]
		rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM jobs WHERE name IN (`+placeholders(len(chunk))+`)`), chunk...)
		if err != nil {
			return nil, fmt.Errorf("read jobs: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read jobs: %w", err)
			}
			existing[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read jobs: %w", err)
		}
	}
	out := make([]store.JobApplyResult, len(p.Jobs))
	var fresh []int // indexes in p.Jobs of the new jobs
	for i, def := range p.Jobs {
		if !existing[def.Spec.Name] {
			fresh = append(fresh, i)
			continue
		}
		r, err := s.jobApply(ctx, tx, def, p)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	for lo := 0; lo < len(fresh); lo += BulkRowsDefault {
		if err := s.jobInsertMany(ctx, tx, p, enc, fresh[lo:min(lo+BulkRowsDefault, len(fresh))], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jobInsertMany inserts the new jobs p.Jobs[idx...] and their schedules, and fills in
// their results as jobGet would read them back.
func (s *DB) jobInsertMany(ctx context.Context, tx *sql.Tx, p store.JobApplyParams, enc []encoded, idx []int, out []store.JobApplyResult) error {
	now := micros(p.Now)
	byName := make(map[string]int, len(idx)) // job name → index in p.Jobs
	args := make([]any, 0, 6*len(idx))
	for _, i := range idx {
		def := p.Jobs[i]
		// Decoded from what is stored, the spec is exactly what a later read returns.
		j := store.Job{Name: def.Spec.Name, Spec: enc[i].spec, CreatedAt: instant(now), UpdatedAt: instant(now)}
		out[i] = store.JobApplyResult{Job: j, Created: true}
		byName[def.Spec.Name] = i
		args = append(args, def.Spec.Name, enc[i].text, def.Spec.Overlap, 1+def.Spec.Retries, now, now)
	}
	rows, err := tx.QueryContext(ctx, s.q(`INSERT INTO jobs (name, spec, paused, overlap, max_attempts, created_at, updated_at)
		VALUES `+rowsOf("(?, ?, 0, ?, ?, ?, ?)", len(idx))+` RETURNING id, name`), args...)
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	byID := map[int64]int{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return fmt.Errorf("insert jobs: %w", err)
		}
		out[byName[name]].Job.ID = id
		byID[id] = byName[name]
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	// Schedules, in chunks of their own: a job may have several.
	type row struct {
		job int64
		idx int
		sp  store.ScheduleSpec
	}
	var all []row
	for _, i := range idx {
		for k, sp := range p.Jobs[i].Schedules {
			all = append(all, row{out[i].Job.ID, k, sp})
		}
		out[i].Job.Schedules = make([]store.Schedule, len(p.Jobs[i].Schedules))
	}
	for lo := 0; lo < len(all); lo += BulkRowsDefault {
		chunk := all[lo:min(lo+BulkRowsDefault, len(all))]
		args := make([]any, 0, 4*len(chunk))
		for _, r := range chunk {
			args = append(args, r.job, r.idx, r.sp.Key, r.sp.Expr)
		}
		rows, err := tx.QueryContext(ctx, s.q(`INSERT INTO schedules (job_id, idx, key, expr, next_fire_at, done)
			VALUES `+rowsOf("(?, ?, ?, ?, NULL, 0)", len(chunk))+` RETURNING id, job_id, idx, key, expr`), args...)
		if err != nil {
			return fmt.Errorf("insert schedules: %w", err)
		}
		for rows.Next() {
			var sc store.Schedule
			if err := rows.Scan(&sc.ID, &sc.JobID, &sc.Index, &sc.Key, &sc.Expr); err != nil {
				rows.Close()
				return fmt.Errorf("insert schedules: %w", err)
			}
			out[byID[sc.JobID]].Job.Schedules[sc.Index] = sc
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("insert schedules: %w", err)
		}
	}
	return nil
}

// rowsOf repeats a VALUES row n times.
func rowsOf(row string, n int) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}
