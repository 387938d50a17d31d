package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

const runColumns = `id, job_id, job, schedule_id, scheduled_at, scheduled_until, occurrences, trigger, state,
	attempt, max_attempts, token, node, epoch, created_at, not_before, started_at, finished_at, exit_code,
	reason, cancel_requested`

const activeStates = `('queued', 'assigned', 'running')`

func scanRun(r scanner, extra ...any) (store.Run, error) {
	var run store.Run
	var schedID, schedAt, schedUntil, started, finished, exit sql.NullInt64
	var created, notBefore int64
	var state string
	var cancel int
	dest := append([]any{&run.ID, &run.JobID, &run.Job, &schedID, &schedAt, &schedUntil, &run.Occurrences,
		&run.Trigger, &state, &run.Attempt, &run.MaxAttempts, &run.Token, &run.Node, &run.Epoch, &created,
		&notBefore, &started, &finished, &exit, &run.Reason, &cancel}, extra...)
	if err := r.Scan(dest...); err != nil {
		return run, err
	}
	run.ScheduleID = schedID.Int64
	run.ScheduledAt, run.ScheduledUntil = instantPtr(schedAt), instantPtr(schedUntil)
	run.State = store.RunState(state)
	run.CreatedAt, run.NotBefore = instant(created), instant(notBefore)
	run.StartedAt, run.FinishedAt = instantPtr(started), instantPtr(finished)
	if exit.Valid {
		c := int(exit.Int64)
		run.ExitCode = &c
	}
	run.CancelRequested = cancel != 0
	return run, nil
}

func (s *DB) runGet(ctx context.Context, qr querier, id int64, lock ...string) (store.Run, error) {
	q := `SELECT ` + runColumns + ` FROM runs WHERE id = ?`
	if len(lock) > 0 {
		q += lock[0]
	}
	run, err := scanRun(qr.QueryRowContext(ctx, s.q(q), id))
	if errors.Is(err, sql.ErrNoRows) {
		return run, notFound("run", id)
	}
	if err != nil {
		return run, fmt.Errorf("get run %d: %w", id, err)
	}
	return run, nil
}

// RunGet implements store.Store. It is the only read that returns captured output.
func (s *DB) RunGet(ctx context.Context, id int64) (store.Run, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var stdout, stderr []byte
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+runColumns+`, stdout, stderr FROM runs WHERE id = ?`), id)
	run, err := scanRun(row, &stdout, &stderr)
	if errors.Is(err, sql.ErrNoRows) {
		return run, notFound("run", id)
	}
	if err != nil {
		return run, fmt.Errorf("get run %d: %w", id, err)
	}
	run.Stdout, run.Stderr = stdout, stderr
	return run, nil
}

// RunList implements store.Store.
func (s *DB) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var where []string
	var args []any
	if p.Job != "" {
		where = append(where, "job = ?")
		args = append(args, p.Job)
	}
	if len(p.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(p.States))+")")
		for _, st := range p.States {
			args = append(args, string(st))
		}
	}
	if p.Node != "" {
		where = append(where, "node = ?")
		args = append(args, p.Node)
	}
	if !p.From.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, micros(p.From))
	}
	if !p.Until.IsZero() {
		where = append(where, "created_at <= ?")
		args = append(args, micros(p.Until))
	}
	if p.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, p.BeforeID)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	return s.runs(ctx, s.db, q, args...)
}

func (s *DB) runs(ctx context.Context, qr querier, q string, args ...any) ([]store.Run, error) {
	rows, err := qr.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []store.Run
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, run)
	}
	return out, rows.Err()
}

// RunListForNode implements store.Store: the node's assigned and running runs.
func (s *DB) RunListForNode(ctx context.Context, node string) ([]store.Run, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.runs(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE node = ? AND state IN ('assigned', 'running') ORDER BY id`, node)
}

// RunListDispatchable implements store.Store. The page is read in the order of the
// partial index on queued runs (not_before, id), so a long queue costs no sort, and
// each job's definition is read once per page rather than once per run.
func (s *DB) RunListDispatchable(ctx context.Context, p store.RunListDispatchableParams) ([]store.DispatchCandidate, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := `SELECT ` + runColumns + ` FROM runs WHERE state = 'queued' AND not_before <= ?`
	args := []any{micros(p.Now)}
	if p.AfterID != 0 {
		q += ` AND (not_before, id) > (?, ?)`
		args = append(args, micros(p.AfterNotBefore), p.AfterID)
	}
	if len(p.SkipJobs) > 0 {
		in, inArgs := s.idIn("job_id", p.SkipJobs)
		q += ` AND NOT (` + in + `)`
		args = append(args, inArgs...)
	}
	runs, err := s.runs(ctx, s.db, q+` ORDER BY not_before, id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list dispatchable runs: %w", err)
	}
	if len(runs) == 0 {
		return nil, nil
	}
	jobs, err := s.dispatchJobs(ctx, runs)
	if err != nil {
		return nil, fmt.Errorf("list dispatchable runs: %w", err)
	}
	out := make([]store.DispatchCandidate, 0, len(runs))
	for _, r := range runs {
		j, ok := jobs[r.JobID]
		if !ok {
			continue // its job was deleted since
		}
		out = append(out, store.DispatchCandidate{Run: r, Spec: j.spec, Active: j.active})
	}
	return out, nil
}

// dispatchJob is what the dispatcher needs of a queued run's job.
type dispatchJob struct {
	spec   job.Spec
	active int // assigned and running runs, counted for overlap "queue" only
}

// dispatchJobs reads the jobs of runs, and for those with overlap "queue" how many of
// their runs are assigned or running.
func (s *DB) dispatchJobs(ctx context.Context, runs []store.Run) (map[int64]dispatchJob, error) {
	var ids []any
	seen := map[int64]bool{}
	for _, r := range runs {
		if !seen[r.JobID] {
			seen[r.JobID] = true
			ids = append(ids, r.JobID)
		}
	}
	out := make(map[int64]dispatchJob, len(ids))
	var queue []any
	for chunk := range slices.Chunk(ids, batchRows) {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, spec FROM jobs WHERE id IN (`+placeholders(len(chunk))+`)`), chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var spec string
			var j dispatchJob
			if err := rows.Scan(&id, &spec); err != nil {
				rows.Close()
				return nil, err
			}
			if err := json.Unmarshal([]byte(spec), &j.spec); err != nil {
				rows.Close()
				return nil, fmt.Errorf("decode job %d: %w", id, err)
			}
			out[id] = j
			if j.spec.Overlap == job.OverlapQueue {
				queue = append(queue, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(queue, batchRows) {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT job_id, COUNT(*) FROM runs WHERE job_id IN (`+placeholders(len(chunk))+`)
			AND state IN ('assigned', 'running') GROUP BY job_id`), chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, err
			}
			j := out[id]
			j.active = n
			out[id] = j
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunCreate implements store.Store.
func (s *DB) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, error) {
	var run store.Run
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := s.jobGet(ctx, tx, p.Job)
		if err != nil {
			return err
		}
		if p.IdempotencyKey != "" {
			// Before the overlap policy: a retried request changes nothing.
			if run, err = s.runByKey(ctx, tx, p); err == nil || !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		trigger := p.Trigger
		if trigger == "" {
			trigger = store.TriggerManual
		}
		id, inserted, err := s.insertRun(ctx, tx, newRun{job: j.ID, name: j.Name, overlap: j.Spec.Overlap, maxAttempts: 1 + j.Spec.Retries,
			trigger: trigger, now: p.Now, idempotencyKey: p.IdempotencyKey})
		if err != nil {
			return err
		}
		if !inserted { // the same key, inserted concurrently
			run, err = s.runByKey(ctx, tx, p)
			return err
		}
		if err := s.notify(ctx, tx, TopicRuns, ""); err != nil {
			return err
		}
		if p.Audit != nil {
			if err := s.auditEvent(ctx, tx, "run.requested", fmt.Sprintf("run %d of %s requested", id, j.Name), *p.Audit,
				map[string]any{"run": id, "job": j.Name}); err != nil {
				return err
			}
		}
		run, err = s.runGet(ctx, tx, id)
		return err
	})
	if err != nil {
		return run, fmt.Errorf("create run of %s: %w", p.Job, err)
	}
	return run, nil
}

// runByKey returns the run created with p's idempotency key.
func (s *DB) runByKey(ctx context.Context, tx *sql.Tx, p store.RunCreateParams) (store.Run, error) {
	run, err := scanRun(tx.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM runs WHERE idempotency_key = ?`), p.IdempotencyKey))
	if errors.Is(err, sql.ErrNoRows) {
		return run, notFound("run with idempotency key", p.IdempotencyKey)
	}
	if err != nil {
		return run, fmt.Errorf("get run by idempotency key: %w", err)
	}
	if run.Job != p.Job {
		return run, fmt.Errorf("idempotency key %q was given for run %d of job %s: %w", p.IdempotencyKey, run.ID, run.Job, store.ErrConflict)
	}
	return run, nil
}

type newRun struct {
	job         int64
	name        string
	overlap     string
	maxAttempts int
	schedule    int64
	scheduled   *time.Time
	trigger     string
	now         time.Time
	epoch       int64 // the firing primary's epoch (0 for on-demand runs)
	// idempotencyKey is an on-demand request's key ("": none).
	idempotencyKey string
}

// insertRun inserts a queued run after applying the job's overlap policy to its active
// runs. It returns 0 when the occurrence already exists.
func (s *DB) insertRun(ctx context.Context, tx *sql.Tx, r newRun) (int64, bool, error) {
	state, reason := store.RunQueued, ""
	if s.d.ForUpdate != "" && (r.overlap == job.OverlapForbid || r.overlap == job.OverlapReplace) {
		// Serialise inserts of one job so two cannot both see "no active run".
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM jobs WHERE id = ?`+s.d.ForUpdate), r.job).Scan(&id); err != nil {
			return 0, false, fmt.Errorf("lock job %s: %w", r.name, err)
		}
	}
	var active []store.Run
	if r.overlap == job.OverlapForbid || r.overlap == job.OverlapReplace {
		// The other policies queue the run whatever is active: no need to read it.
		var err error
		active, err = s.runs(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE job_id = ? AND state IN `+activeStates+` ORDER BY id`, r.job)
		if err != nil {
			return 0, false, err
		}
	}
	if len(active) > 0 {
		switch r.overlap {
		case job.OverlapForbid:
			state, reason = store.RunSkipped, fmt.Sprintf("overlap forbid: run %d is still %s", active[0].ID, active[0].State)
		case job.OverlapReplace:
			if err := s.replaceActive(ctx, tx, active, r.now); err != nil {
				return 0, false, err
			}
		}
	}
	var sched any
	if r.schedule != 0 {
		sched = r.schedule
	}
	var finished any
	if state.Final() {
		finished = micros(r.now)
	}
	var id int64
	var key any
	if r.idempotencyKey != "" {
		key = r.idempotencyKey
	}
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO runs (job_id, job, schedule_id, scheduled_at, occurrences, trigger, state,
		max_attempts, created_at, not_before, finished_at, reason, epoch, idempotency_key)
		VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING RETURNING id`),
		r.job, r.name, sched, microsPtr(r.scheduled), r.trigger, string(state), r.maxAttempts,
		micros(r.now), micros(r.now), finished, reason, r.epoch, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("insert run: %w", err)
	}
	if state.Final() { // skipped by its overlap policy
		if err := s.runEvents(ctx, tx, []int64{id}); err != nil {
			return 0, false, err
		}
	}
	return id, true, nil
}

// replaceActive ends the active runs of a job with overlap "replace": waiting ones at
// once, running ones through a cancel request their worker acts on.
func (s *DB) replaceActive(ctx context.Context, tx *sql.Tx, active []store.Run, now time.Time) error {
	for _, a := range active {
		var err error
		if a.State == store.RunRunning {
			_, err = s.exec(ctx, tx, `UPDATE runs SET cancel_requested = 1, reason = 'replaced by a newer run' WHERE id = ?`, a.ID)
		} else {
			_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'canceled', reason = 'replaced by a newer run', finished_at = ?
				WHERE id = ? AND state IN ('queued', 'assigned')`, micros(now), a.ID)
			if err == nil {
				err = s.deliveriesCreate(ctx, tx, []int64{a.ID})
			}
		}
		if err != nil {
			return fmt.Errorf("replace run %d: %w", a.ID, err)
		}
	}
	return nil
}

// RunAssign implements store.Store.
func (s *DB) RunAssign(ctx context.Context, p store.RunAssignParams) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		closed := map[string]bool{}
		for _, a := range p.Assignments {
			if _, seen := closed[a.Node]; seen {
				continue
			}
			// Read under a key-share lock: a change of the node's mode that closes it to
			// assignments (a "draining" heartbeat, NodeLose) locks the row for update
			// first and so waits for this transaction, and the runs it releases or
			// re-queues next include these. An ordinary heartbeat updates the row without
			// that lock and never waits here.
			var mode string
			err := tx.QueryRowContext(ctx, s.q(`SELECT mode FROM nodes WHERE id = ?`+s.d.ForKeyShare), a.Node).Scan(&mode)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read node %s: %w", a.Node, err)
			}
			closed[a.Node] = closedMode(mode)
		}
		var open []store.Assignment
		for _, a := range p.Assignments {
			if !closed[a.Node] {
				open = append(open, a)
			}
		}
		state, started := store.RunAssigned, any(nil)
		if p.Start {
			state, started = store.RunRunning, micros(p.Now)
		}
		for chunk := range slices.Chunk(open, s.batchRows()) {
			rows := make([][]any, len(chunk))
			for i, a := range chunk {
				rows[i] = []any{a.RunID, a.Node, a.Token, string(store.RunQueued)}
			}
			v, vargs := s.table([]string{"BIGINT", "TEXT", "TEXT", "TEXT"}, rows)
			k, err := s.exec(ctx, tx, assignSQL(v), slices.Concat([]any{string(state), p.Epoch, started}, vargs)...)
			if err != nil {
				return fmt.Errorf("assign %d runs from run %d: %w", len(chunk), chunk[0].RunID, err)
			}
			n += int(k)
		}
		// The epoch is checked last, under a share lock held until commit: a change of
		// holder committed before it is seen here and undoes everything above, one after
		// it waits for this commit. Last, so that the lease row is locked for an instant,
		// not for the whole assignment, and the holder's renewals do not wait on it.
		if err := s.checkEpoch(ctx, tx, p.Epoch); err != nil {
			return err
		}
		nodes := map[string]bool{}
		var list []string
		for _, a := range p.Assignments {
			if !nodes[a.Node] {
				nodes[a.Node] = true
				list = append(list, a.Node)
			}
		}
		return s.notify(ctx, tx, TopicAssigned, strings.Join(list, ","))
	})
	if err != nil {
		return 0, fmt.Errorf("assign runs: %w", err)
	}
	return n, nil
}

// RunRelease implements store.Store.
func (s *DB) RunRelease(ctx context.Context, p store.RunReleaseParams) ([]int64, error) {
	var ids []int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ids = nil
		if err := s.checkEpoch(ctx, tx, p.Epoch); err != nil {
			return err
		}
		if p.Holder != "" {
			// Locked so that a claim of the node id by another process waits, or is seen.
			var holder string
			err := tx.QueryRowContext(ctx, s.q(`SELECT holder FROM nodes WHERE id = ?`+s.d.ForUpdate), p.Node).Scan(&holder)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && holder != p.Holder) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read node %s: %w", p.Node, err)
			}
		}
		if p.Runs != nil {
			var err error
			ids, err = s.releaseAttempts(ctx, tx, p)
			if err != nil || len(ids) == 0 {
				return err
			}
			return s.notify(ctx, tx, TopicRuns, "")
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM runs WHERE node = ? AND state = 'assigned'`+s.d.ForUpdate), p.Node)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			// Never started: the attempt did not happen, so it is not spent.
			if _, err := s.exec(ctx, tx, `UPDATE runs SET state = 'queued', node = '', token = '', attempt = attempt - 1, not_before = ?,
				reason = ? WHERE id = ? AND state = 'assigned'`, micros(p.Now), p.Reason, id); err != nil {
				return err
			}
		}
		if len(ids) > 0 {
			return s.notify(ctx, tx, TopicRuns, "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release the runs assigned to node %s: %w", p.Node, err)
	}
	return ids, nil
}

// releaseAttempts queues again the attempts p.Runs names that are still current on
// p.Node, without spending them, and returns their runs' ids in order.
func (s *DB) releaseAttempts(ctx context.Context, tx *sql.Tx, p store.RunReleaseParams) ([]int64, error) {
	var ids []int64
	for chunk := range slices.Chunk(p.Runs, s.batchRows()) {
		rows := make([][]any, len(chunk))
		for i, r := range chunk {
			rows[i] = []any{r.ID, r.Token, p.Node, string(store.RunAssigned), string(store.RunRunning)}
		}
		v, vargs := s.table([]string{"BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"}, rows)
		res, err := tx.QueryContext(ctx, s.q(releaseSQL(v)), slices.Concat([]any{micros(p.Now), p.Reason}, vargs)...)
		if err != nil {
			return nil, fmt.Errorf("release %d attempts: %w", len(chunk), err)
		}
		for res.Next() {
			var id int64
			if err := res.Scan(&id); err != nil {
				res.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		res.Close()
		if err := res.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// RunCancel implements store.Store.
func (s *DB) RunCancel(ctx context.Context, p store.RunCancelParams) (store.Run, error) {
	var run store.Run
	reason := p.Reason
	if reason == "" {
		reason = "canceled by request"
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.runGet(ctx, tx, p.ID, s.d.ForUpdate)
		if err != nil {
			return err
		}
		switch cur.State {
		case store.RunQueued, store.RunAssigned:
			_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'canceled', reason = ?, finished_at = ? WHERE id = ?`, reason, micros(p.Now), p.ID)
			if err == nil {
				err = s.deliveriesCreate(ctx, tx, []int64{p.ID})
			}
		case store.RunRunning:
			if _, err = s.exec(ctx, tx, `UPDATE runs SET cancel_requested = 1, reason = ? WHERE id = ?`, reason, p.ID); err == nil {
				err = s.notify(ctx, tx, TopicAssigned, cur.Node)
			}
		default:
			return fmt.Errorf("run %d already %s: %w", p.ID, cur.State, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		if p.Audit != nil {
			if err := s.auditEvent(ctx, tx, "run.cancel_requested", fmt.Sprintf("cancel of run %d of %s requested", p.ID, cur.Job), *p.Audit,
				map[string]any{"run": p.ID, "job": cur.Job}); err != nil {
				return err
			}
		}
		run, err = s.runGet(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return run, fmt.Errorf("cancel run %d: %w", p.ID, err)
	}
	return run, nil
}
