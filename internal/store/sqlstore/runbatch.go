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

// batchRows is how many runs one multi-row statement carries where each value is a
// parameter (SQLite): few enough parameters for its limit (32766), many enough that a
// batch costs a handful of statements. arrayRows is the same where a column of rows is
// one array parameter (PostgreSQL), whose statements cost the same to plan for any number
// of rows.
const (
	batchRows = 500
	arrayRows = 5000
)

// batchRows is how many rows one statement built with table carries on this engine.
func (s *DB) batchRows() int {
	if s.d.ArrayParams {
		return arrayRows
	}
	return batchRows
}

// table returns a FROM item named v whose columns c1, c2 … have the given SQL types
// (BIGINT or TEXT) and hold rows (each with one value per column, nil for NULL), and its
// arguments. PostgreSQL gets one array parameter per column, unnested: a statement of any
// number of rows is then parsed and planned as fast as one of a single row, where a VALUES
// list of hundreds of rows costs it milliseconds to plan. SQLite gets a VALUES list.
//
// Every statement that changes runs by such a table joins it to runs by primary key
// (runs.id = v.c1) and compares the state the run must be in with a column of the table,
// never with a constant: a constant state matches a partial index's predicate (runs_queued,
// runs_node_active), and with it the planner may scan that index whole for each batch, or
// join the batch inside a loop over it, which costs the square of the batch. Joined by key
// alone the plan is one primary key lookup per row whatever the statistics say
// (TestRunBatchPlans checks it on both engines).
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

// The statements that change runs by a table of rows v (see table); ExplainBatches
// shows how the engine plans them.

// assignSQL assigns queued runs: v is (id, node, token, 'queued'); the arguments before
// v's are the new state, the epoch and started_at (NULL unless the assignment starts).
func assignSQL(v string) string {
	return `UPDATE runs SET state = ?, node = v.c2, token = v.c3, attempt = attempt + 1, epoch = ?,
		started_at = CAST(? AS BIGINT) FROM ` + v + ` WHERE runs.id = v.c1 AND runs.state = v.c4`
}

// startSQL starts assigned runs: v is (id, token, 'assigned'); started_at comes first.
func startSQL(v string) string {
	return `UPDATE runs SET state = 'running', started_at = ? FROM ` + v + `
		WHERE runs.id = v.c1 AND runs.token = v.c2 AND runs.state = v.c3 RETURNING ` + runColumns
}

// finishSQL ends running attempts: v is (id, token, state, finished_at, exit code,
// reason, 'running').
func finishSQL(v string) string {
	return `UPDATE runs SET state = v.c3, finished_at = v.c4, exit_code = v.c5, reason = v.c6,
		stdout = NULL, stderr = NULL FROM ` + v + ` WHERE runs.id = v.c1 AND runs.token = v.c2 AND runs.state = v.c7
		RETURNING runs.id`
}

// releaseSQL queues attempts again without spending them: v is (id, token, node,
// 'assigned', 'running'); not_before and the reason come first.
func releaseSQL(v string) string {
	return `UPDATE runs SET state = 'queued', node = '', token = '', attempt = attempt - 1,
		started_at = NULL, not_before = CAST(? AS BIGINT), reason = CAST(? AS TEXT) FROM ` + v + `
		WHERE runs.id = v.c1 AND runs.token = v.c2 AND runs.node = v.c3 AND runs.state IN (v.c4, v.c5)
		RETURNING runs.id`
}

// ExplainBatches returns the engine's plan (EXPLAIN, or SQLite's EXPLAIN QUERY PLAN) of
// each statement that changes runs by batch, for a batch of the runs with the given ids,
// as they are planned now; on PostgreSQL the generic plan, which a prepared statement
// switches to after five executions. Nothing is changed. For tests and diagnosis.
func (s *DB) ExplainBatches(ctx context.Context, ids []int64) (map[string]string, error) {
	rows := func(f func(id int64) []any) [][]any {
		out := make([][]any, len(ids))
		for i, id := range ids {
			out[i] = f(id)
		}
		return out
	}
	type stmt struct {
		sql   func(string) string
		types []string
		rows  [][]any
		first []any
	}
	stmts := map[string]stmt{
		"assign": {assignSQL, []string{"BIGINT", "TEXT", "TEXT", "TEXT"},
			rows(func(id int64) []any { return []any{id, "n", "t", string(store.RunQueued)} }), []any{string(store.RunRunning), int64(1), int64(1)}},
		"start": {startSQL, []string{"BIGINT", "TEXT", "TEXT"},
			rows(func(id int64) []any { return []any{id, "t", string(store.RunAssigned)} }), []any{int64(1)}},
		"finish": {finishSQL, []string{"BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT"},
			rows(func(id int64) []any {
				return []any{id, "t", string(store.RunSucceeded), int64(1), nil, "", string(store.RunRunning)}
			}), nil},
		"release": {releaseSQL, []string{"BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"},
			rows(func(id int64) []any { return []any{id, "t", "n", string(store.RunAssigned), string(store.RunRunning)} }), []any{int64(1), ""}},
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer conn.Close()
	out := map[string]string{}
	for name, st := range stmts {
		v, vargs := s.table(st.types, st.rows)
		args := slices.Concat(st.first, vargs)
		plan, err := s.explain(ctx, conn, s.q(st.sql(v)), args)
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", name, err)
		}
		out[name] = plan
	}
	return out, nil
}

// explain plans query on conn without running it.
func (s *DB) explain(ctx context.Context, conn *sql.Conn, query string, args []any) (string, error) {
	var q string
	if s.d.ArrayParams {
		// The generic plan: prepared by name, forced generic, explained on execution.
		if _, err := conn.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
			return "", err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `RESET plan_cache_mode`)
		if _, err := conn.ExecContext(ctx, `PREPARE tandem_explain AS `+query); err != nil {
			return "", err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `DEALLOCATE tandem_explain`)
		ps := make([]string, len(args))
		for i, a := range args {
			ps[i] = literal(a) // EXECUTE takes no parameters of its own
		}
		q, args = `EXPLAIN EXECUTE tandem_explain(`+strings.Join(ps, ", ")+`)`, nil
	} else {
		q = `EXPLAIN QUERY PLAN ` + query
	}
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals[len(vals)-1]) // the plan line (SQLite: its detail column)
	}
	return b.String(), rows.Err()
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
		for chunk := range slices.Chunk(p.Runs, s.batchRows()) {
			rows := make([][]any, len(chunk))
			for i, r := range chunk {
				rows[i] = []any{r.ID, r.Token, string(store.RunAssigned)}
			}
			v, vargs := s.table([]string{"BIGINT", "TEXT", "TEXT"}, rows)
			runs, err := s.runs(ctx, tx, startSQL(v), slices.Concat([]any{micros(p.Now)}, vargs)...)
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
	var ended []int64 // runs whose attempt ended here, for their delivery records
	for chunk := range slices.Chunk(plain, s.batchRows()) {
		rows := make([][]any, len(chunk))
		ids := make([]int64, len(chunk))
		for k, i := range chunk {
			p := items[i]
			var exit any
			if p.ExitCode != nil {
				exit = int64(*p.ExitCode)
			}
			rows[k], ids[k] = []any{p.RunID, p.Token, string(p.State), micros(p.Now), exit, p.Reason, string(store.RunRunning)}, p.RunID
		}
		v, vargs := s.table([]string{"BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT"}, rows)
		applied := map[int64]bool{}
		res, err := tx.QueryContext(ctx, s.q(finishSQL(v)), vargs...)
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
			ended = append(ended, id)
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
		ended = append(ended, p.RunID)
		h.state = p.State // any state but running: a later item for this attempt is stale
	}
	// In this transaction: a run that ended has its delivery records (deliveries.go).
	if err := s.deliveriesCreate(ctx, tx, ended); err != nil {
		return nil, err
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
		if err == nil {
			err = s.runEvents(ctx, tx, []int64{p.RunID})
		}
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

// literal writes an argument of a statement built with table as a PostgreSQL literal.
func literal(a any) string {
	quote := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
	switch v := a.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return quote(v)
	case []*int64:
		els := make([]string, len(v))
		for i, p := range v {
			els[i] = "NULL"
			if p != nil {
				els[i] = strconv.FormatInt(*p, 10)
			}
		}
		return "'{" + strings.Join(els, ",") + "}'"
	case []string:
		els := make([]string, len(v))
		for i, e := range v {
			els[i] = quote(e)
		}
		return "ARRAY[" + strings.Join(els, ",") + "]::text[]"
	default:
		return quote(fmt.Sprint(v))
	}
}
