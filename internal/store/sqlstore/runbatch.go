package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// batchRows is how many runs one multi-row statement carries: few enough parameters for
// every engine's limit (SQLite 32766, PostgreSQL 65535), many enough that a batch costs
// a handful of statements.
const batchRows = 500

// table returns a FROM item named v whose columns c1, c2 … have the given SQL types
// (BIGINT or TEXT) and hold rows (each with one value per column, nil for NULL), and its
// arguments. PostgreSQL gets one array parameter per column, unnested: a statement of any
// number of rows is then parsed and planned as fast as one of a single row, where a VALUES
// list of hundreds of rows costs it milliseconds to plan. SQLite gets a VALUES list.
func (s *DB) table(types []string, rows [][]any) (string, []any) {
	names := make([]string, len(types))
	for i := range types {
		names[i] = "c" + strconv.Itoa(i+1)
	}
	if s.d.ArrayParams {
		cols := make([]string, len(types))
		args := make([]any, len(types))
		for i, t := range types {
			cols[i] = "CAST(? AS " + t + "[])"
			switch t {
			case "BIGINT":
				vals := make([]*int64, len(rows))
				for j, r := range rows {
					if r[i] != nil {
						v := r[i].(int64)
						vals[j] = &v
					}
				}
				args[i] = vals
			default:
				vals := make([]string, len(rows))
				for j, r := range rows {
					vals[j] = r[i].(string)
				}
				args[i] = vals
			}
		}
		return "unnest(" + strings.Join(cols, ", ") + ") AS v(" + strings.Join(names, ", ") + ")", args
	}
	sel := make([]string, len(types))
	for i, n := range names {
		sel[i] = "column" + strconv.Itoa(i+1) + " AS " + n
	}
	row := "(" + placeholders(len(types)) + ")"
	args := make([]any, 0, len(rows)*len(types))
	for _, r := range rows {
		args = append(args, r...)
	}
	return "(SELECT " + strings.Join(sel, ", ") + " FROM (VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", len(rows)), ", ") +
		")) AS v", args
}

// idIn returns a condition that col is one of ids, and its arguments: "= ANY(array)" on
// PostgreSQL, "IN (…)" elsewhere.
func (s *DB) idIn(col string, ids []int64) (string, []any) {
	if s.d.ArrayParams {
		return col + " = ANY(CAST(? AS BIGINT[]))", []any{ids}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return col + " IN (" + placeholders(len(ids)) + ")", args
}

// byID returns, on PostgreSQL, a condition " AND col = ANY(ids)" to add to a join of
// runs with a table of rows keyed by id: the planner then looks the runs up by primary
// key, where the join alone may have it scan a partial index it wrongly believes small
// (a young table has no statistics). SQLite plans such a join by primary key already,
// and the condition would make it scan the table of rows once per id: "" there.
func (s *DB) byID(col string, ids []int64) (string, []any) {
	if !s.d.ArrayParams {
		return "", nil
	}
	in, args := s.idIn(col, ids)
	return " AND " + in, args
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
			// Every row is the same: n rows from a counter, in one short statement.
			now := micros(p.Now)
			for k := p.Count; k > 0; k -= batchRows {
				n := min(k, batchRows)
				runs, err := s.runs(ctx, tx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
					INSERT INTO runs (job_id, job, occurrences, trigger, state, max_attempts, created_at, not_before, reason, epoch)
					SELECT CAST(? AS BIGINT), CAST(? AS TEXT), 1, CAST(? AS TEXT), 'queued', CAST(? AS BIGINT),
						CAST(? AS BIGINT), CAST(? AS BIGINT), '', 0 FROM n
					RETURNING `+runColumns, n, j.ID, j.Name, trigger, 1+j.Spec.Retries, now, now)
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
		in, args := s.idIn("id", chunk)
		runs, err := s.runs(ctx, qr, `SELECT `+runColumns+` FROM runs WHERE `+in, args...)
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
			rows := make([][]any, len(chunk))
			ids := make([]int64, len(chunk))
			for i, r := range chunk {
				rows[i], ids[i] = []any{r.ID, r.Token}, r.ID
			}
			v, vargs := s.table([]string{"BIGINT", "TEXT"}, rows)
			in, inArgs := s.byID("runs.id", ids)
			runs, err := s.runs(ctx, tx, `UPDATE runs SET state = 'running', started_at = ? FROM `+v+`
				WHERE runs.id = v.c1 AND runs.token = v.c2 AND runs.state = 'assigned'`+in+`
				RETURNING `+runColumns, slices.Concat([]any{micros(p.Now)}, vargs, inArgs)...)
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

// finishBatch ends the attempts of items inside tx and returns each item's result.
//
// The common ending (a final state, no captured output, no retry asked for) is written
// for many runs by one statement that checks each run's token and state itself, so the
// runs need not be read first. The other items, and any second item for one run, are
// judged one by one on their run as read after that statement (and locked, where the
// engine locks rows).
func (s *DB) finishBatch(ctx context.Context, tx *sql.Tx, items []store.RunFinishParams) ([]error, error) {
	errs := make([]error, len(items))
	var plain, other []int // indexes into items
	seen := make(map[int64]bool, len(items))
	for i, p := range items {
		simple := len(p.Stdout) == 0 && len(p.Stderr) == 0 && len(p.Outputs) == 0 && (p.RetryAt == nil || p.State != store.RunFailed)
		if simple && !seen[p.RunID] {
			plain = append(plain, i)
		} else {
			other = append(other, i)
		}
		seen[p.RunID] = true
	}
	var refused []int // plain items the statement did not apply
	for chunk := range slices.Chunk(plain, batchRows) {
		rows := make([][]any, len(chunk))
		ids := make([]int64, len(chunk))
		for k, i := range chunk {
			p := items[i]
			var exit any
			if p.ExitCode != nil {
				exit = int64(*p.ExitCode)
			}
			rows[k], ids[k] = []any{p.RunID, p.Token, string(p.State), micros(p.Now), exit, p.Reason}, p.RunID
		}
		v, vargs := s.table([]string{"BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT"}, rows)
		in, inArgs := s.byID("runs.id", ids)
		applied := map[int64]bool{}
		res, err := tx.QueryContext(ctx, s.q(`UPDATE runs SET state = v.c3, finished_at = v.c4, exit_code = v.c5, reason = v.c6,
			stdout = NULL, stderr = NULL FROM `+v+` WHERE runs.id = v.c1 AND runs.token = v.c2 AND runs.state = 'running'`+in+`
			RETURNING runs.id`), slices.Concat(vargs, inArgs)...)
		if err != nil {
			return nil, fmt.Errorf("finish %d runs from run %d: %w", len(chunk), ids[0], err)
		}
		for res.Next() {
			var id int64
			if err := res.Scan(&id); err != nil {
				res.Close()
				return nil, fmt.Errorf("finish runs: %w", err)
			}
			applied[id] = true
		}
		res.Close()
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("finish runs: %w", err)
		}
		for _, i := range chunk {
			if !applied[items[i].RunID] {
				refused = append(refused, i)
			}
		}
	}
	// Read what the rest are judged by: the refused plain items' runs, to say why, and
	// the other items' runs.
	var ids []int64
	for _, i := range slices.Concat(refused, other) {
		ids = append(ids, items[i].RunID)
	}
	heads, err := s.attemptHeads(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for _, i := range refused {
		p := items[i]
		if h := heads[p.RunID]; h == nil {
			errs[i] = notFound("run", p.RunID)
		} else {
			errs[i] = fmt.Errorf("run %d is %s: %w", p.RunID, h.state, store.ErrStale)
		}
	}
	// In the order given: a second result for one attempt finds it ended by the first.
	for _, i := range other {
		p := items[i]
		h := heads[p.RunID]
		switch {
		case h == nil:
			errs[i] = notFound("run", p.RunID)
			continue
		case h.token != p.Token || h.state != store.RunRunning:
			errs[i] = fmt.Errorf("run %d is %s: %w", p.RunID, h.state, store.ErrStale)
			continue
		}
		if err := s.finishOne(ctx, tx, p, h); err != nil {
			return nil, err
		}
		h.state = p.State // any state but running: a later item for this attempt is stale
	}
	// Freed capacity, and a run queued for its retry, are news for the dispatcher.
	if len(items) > 0 {
		if err := s.notify(ctx, tx, TopicRuns, ""); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// attemptHeads reads, and locks where the engine locks rows, what finishing needs of the
// runs with the given ids. A run that does not exist is missing from the map.
func (s *DB) attemptHeads(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]*attemptHead, error) {
	heads := make(map[int64]*attemptHead, len(ids))
	for chunk := range slices.Chunk(ids, batchRows) {
		in, args := s.idIn("id", chunk)
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, token, state, attempt, max_attempts, cancel_requested, node
			FROM runs WHERE `+in+s.d.ForUpdate), args...)
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
	return heads, nil
}

// finishOne ends one attempt whose run h was read under the item's token: queued again
// for a retry, or ended with its captured output, and its output files recorded.
func (s *DB) finishOne(ctx context.Context, tx *sql.Tx, p store.RunFinishParams, h *attemptHead) error {
	var exit any
	if p.ExitCode != nil {
		exit = *p.ExitCode
	}
	var err error
	if p.RetryAt != nil && p.State == store.RunFailed && h.attempt < h.maxAttempts && !h.cancel {
		_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'queued', node = '', token = '', not_before = ?, exit_code = ?,
			reason = ?, stdout = ?, stderr = ?, started_at = NULL WHERE id = ?`,
			micros(*p.RetryAt), exit, p.Reason, p.Stdout, p.Stderr, p.RunID)
	} else {
		_, err = s.exec(ctx, tx, `UPDATE runs SET state = ?, finished_at = ?, exit_code = ?, reason = ?, stdout = ?, stderr = ?
			WHERE id = ?`, string(p.State), micros(p.Now), exit, p.Reason, p.Stdout, p.Stderr, p.RunID)
	}
	if err != nil {
		return fmt.Errorf("finish run %d: %w", p.RunID, err)
	}
	return s.recordOutputs(ctx, tx, p, h.attempt, h.node)
}

// RunLoad implements store.Store. Only the assigned and running runs are counted, which
// the partial index on (node) covers, so the length of the queue does not matter.
func (s *DB) RunLoad(ctx context.Context) ([]store.RunCount, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	// node >= '' holds for every row; as a condition on the index's key it keeps the
	// PostgreSQL planner from combining this index with the queue's.
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT node, state, COUNT(*) FROM runs WHERE state IN ('assigned', 'running')
		AND node >= '' GROUP BY node, state ORDER BY node, state`))
	if err != nil {
		return nil, fmt.Errorf("count the runs on nodes: %w", err)
	}
	return scanRunCounts(rows, "count the runs on nodes")
}
