package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// batchRows is how many runs one multi-row statement carries: few enough parameters for
// every engine's limit (SQLite 32766, PostgreSQL 65535), many enough that a batch costs
// a handful of statements.
const batchRows = 500

// valuesRows returns n rows of a VALUES list whose columns have the given SQL types:
// "(CAST(? AS BIGINT), CAST(? AS TEXT)), …". The casts give PostgreSQL the parameter
// types (it would take them for text); SQLite takes them as affinities. Columns are
// column1, column2 … on both engines.
func valuesRows(n int, types ...string) string {
	cols := make([]string, len(types))
	for i, t := range types {
		cols[i] = "CAST(? AS " + t + ")"
	}
	row := "(" + strings.Join(cols, ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// RunCreateBatch implements store.Store.
func (s *DB) RunCreateBatch(ctx context.Context, p store.RunCreateBatchParams) ([]store.Run, error) {
	var out []store.Run
	trigger := cmp.Or(p.Trigger, store.TriggerManual)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = nil
		j, err := s.jobGet(ctx, tx, p.Job)
		if err != nil {
			return err
		}
		if j.Spec.Overlap == job.OverlapForbid || j.Spec.Overlap == job.OverlapReplace {
			// Each run's fate depends on the one before: one at a time.
			var ids []int64
			for range p.Count {
				id, _, err := s.insertRun(ctx, tx, newRun{job: j.ID, name: j.Name, overlap: j.Spec.Overlap,
					maxAttempts: 1 + j.Spec.Retries, trigger: trigger, now: p.Now})
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if out, err = s.runsByID(ctx, tx, ids); err != nil {
				return err
			}
		} else {
			// allow and queue: every run is queued whatever is active.
			now := micros(p.Now)
			for k := p.Count; k > 0; k -= batchRows {
				n := min(k, batchRows)
				args := make([]any, 0, 6*n)
				for range n {
					args = append(args, j.ID, j.Name, trigger, 1+j.Spec.Retries, now, now)
				}
				row := "(?, ?, 1, ?, 'queued', ?, ?, ?, '', 0)"
				runs, err := s.runs(ctx, tx, `INSERT INTO runs (job_id, job, occurrences, trigger, state, max_attempts,
					created_at, not_before, reason, epoch)
					VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")+` RETURNING `+runColumns, args...)
				if err != nil {
					return fmt.Errorf("insert runs: %w", err)
				}
				out = append(out, runs...)
			}
			slices.SortFunc(out, func(a, b store.Run) int { return cmp.Compare(a.ID, b.ID) })
		}
		if p.Count > 0 {
			return s.notify(ctx, tx, TopicRuns, "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create %d runs of %s: %w", p.Count, p.Job, err)
	}
	return out, nil
}

// runsByID reads runs by id, in the order of ids.
func (s *DB) runsByID(ctx context.Context, qr querier, ids []int64) ([]store.Run, error) {
	byID := make(map[int64]store.Run, len(ids))
	for chunk := range slices.Chunk(ids, batchRows) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		runs, err := s.runs(ctx, qr, `SELECT `+runColumns+` FROM runs WHERE id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			byID[r.ID] = r
		}
	}
	out := make([]store.Run, 0, len(ids))
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// RunStartBatch implements store.Store. One statement per chunk changes only the runs
// still assigned under the token given, and returns them.
func (s *DB) RunStartBatch(ctx context.Context, p store.RunStartBatchParams) ([]store.Run, error) {
	var out []store.Run
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = nil
		for chunk := range slices.Chunk(p.Runs, batchRows) {
			args := []any{micros(p.Now)}
			for _, r := range chunk {
				args = append(args, r.ID, r.Token)
			}
			runs, err := s.runs(ctx, tx, `UPDATE runs SET state = 'running', started_at = ?
				FROM (VALUES `+valuesRows(len(chunk), "BIGINT", "TEXT")+`) AS v
				WHERE runs.id = v.column1 AND runs.token = v.column2 AND runs.state = 'assigned'
				RETURNING `+runColumns, args...)
			if err != nil {
				return err
			}
			out = append(out, runs...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start %d runs: %w", len(p.Runs), err)
	}
	slices.SortFunc(out, func(a, b store.Run) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// RunFinishBatch implements store.Store.
func (s *DB) RunFinishBatch(ctx context.Context, p store.RunFinishBatchParams) ([]error, error) {
	var errs []error
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		errs, err = s.finishBatch(ctx, tx, p.Items)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d runs: %w", len(p.Items), err)
	}
	return errs, nil
}

// attemptHead is what finishing an attempt needs to know of its run.
type attemptHead struct {
	token       string
	state       store.RunState
	attempt     int
	maxAttempts int
	cancel      bool
	node        string
}

// finishBatch ends the attempts of items inside tx. The runs are read (and locked where
// the engine locks rows) first, so each item is judged by its run's current token and
// state; the common ending, a final state with no captured output and no retry, is
// written for many runs by one statement, the others one by one.
func (s *DB) finishBatch(ctx context.Context, tx *sql.Tx, items []store.RunFinishParams) ([]error, error) {
	heads := make(map[int64]*attemptHead, len(items))
	ids := make([]any, 0, len(items))
	for _, p := range items {
		if _, dup := heads[p.RunID]; !dup {
			heads[p.RunID] = nil
			ids = append(ids, p.RunID)
		}
	}
	for chunk := range slices.Chunk(ids, batchRows) {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, token, state, attempt, max_attempts, cancel_requested, node
			FROM runs WHERE id IN (`+placeholders(len(chunk))+`)`+s.d.ForUpdate), chunk...)
		if err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
		for rows.Next() {
			var id int64
			var h attemptHead
			var state string
			var cancel int
			if err := rows.Scan(&id, &h.token, &state, &h.attempt, &h.maxAttempts, &cancel, &h.node); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read runs: %w", err)
			}
			h.state, h.cancel = store.RunState(state), cancel != 0
			heads[id] = &h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
	}
	errs := make([]error, len(items))
	var plain []store.RunFinishParams // final, no output captured
	for i, p := range items {
		h := heads[p.RunID]
		switch {
		case h == nil:
			errs[i] = notFound("run", p.RunID)
			continue
		case h.token != p.Token || h.state != store.RunRunning:
			errs[i] = fmt.Errorf("run %d is %s: %w", p.RunID, h.state, store.ErrStale)
			continue
		}
		retry := p.RetryAt != nil && p.State == store.RunFailed && h.attempt < h.maxAttempts && !h.cancel
		h.state = p.State // a second item for the same attempt is stale (any state but running)
		var exit any
		if p.ExitCode != nil {
			exit = *p.ExitCode
		}
		var err error
		switch {
		case retry:
			_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'queued', node = '', token = '', not_before = ?, exit_code = ?,
				reason = ?, stdout = ?, stderr = ?, started_at = NULL WHERE id = ?`,
				micros(*p.RetryAt), exit, p.Reason, p.Stdout, p.Stderr, p.RunID)
		case len(p.Stdout) > 0 || len(p.Stderr) > 0:
			_, err = s.exec(ctx, tx, `UPDATE runs SET state = ?, finished_at = ?, exit_code = ?, reason = ?, stdout = ?, stderr = ?
				WHERE id = ?`, string(p.State), micros(p.Now), exit, p.Reason, p.Stdout, p.Stderr, p.RunID)
		default:
			plain = append(plain, p)
		}
		if err != nil {
			return nil, fmt.Errorf("finish run %d: %w", p.RunID, err)
		}
		for _, o := range p.Outputs {
			if _, err := s.exec(ctx, tx, `INSERT INTO outputs (run_id, attempt, name, size, sha256, node, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, p.RunID, h.attempt, o.Name, o.Size, o.SHA256, h.node, micros(p.Now)); err != nil {
				return nil, fmt.Errorf("record output %s of run %d: %w", o.Name, p.RunID, err)
			}
		}
	}
	for chunk := range slices.Chunk(plain, batchRows) {
		args := make([]any, 0, 5*len(chunk))
		for _, p := range chunk {
			var exit any
			if p.ExitCode != nil {
				exit = int64(*p.ExitCode)
			}
			args = append(args, p.RunID, string(p.State), micros(p.Now), exit, p.Reason)
		}
		if _, err := s.exec(ctx, tx, `UPDATE runs SET state = v.column2, finished_at = v.column3, exit_code = v.column4,
			reason = v.column5, stdout = NULL, stderr = NULL
			FROM (VALUES `+valuesRows(len(chunk), "BIGINT", "TEXT", "BIGINT", "BIGINT", "TEXT")+`) AS v
			WHERE runs.id = v.column1`, args...); err != nil {
			return nil, fmt.Errorf("finish %d runs from run %d: %w", len(chunk), chunk[0].RunID, err)
		}
	}
	// Freed capacity, and a run queued for its retry, are news for the dispatcher.
	if len(items) > 0 {
		if err := s.notify(ctx, tx, TopicRuns, ""); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// RunLoad implements store.Store. Only the assigned and running runs are counted, which
// the partial index on (node) covers, so the length of the queue does not matter.
func (s *DB) RunLoad(ctx context.Context) ([]store.RunCount, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT node, state, COUNT(*) FROM runs WHERE state IN ('assigned', 'running')
		GROUP BY node, state ORDER BY node, state`))
	if err != nil {
		return nil, fmt.Errorf("count the runs on nodes: %w", err)
	}
	defer rows.Close()
	var out []store.RunCount
	for rows.Next() {
		var c store.RunCount
		var state string
		if err := rows.Scan(&c.Node, &state, &c.Count); err != nil {
			return nil, fmt.Errorf("count the runs on nodes: %w", err)
		}
		c.State = store.RunState(state)
		out = append(out, c)
	}
	return out, rows.Err()
}
