package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// entryColumns are the columns scanEntries reads: a schedule and its job's name and spec.
const entryColumns = `s.id, s.job_id, s.idx, s.key, s.expr, s.next_fire_at, s.done, j.name, j.spec`

// ScheduleListDue implements store.Store. The partial index schedules_due (next_fire_at,
// id) WHERE done = 0 serves it: a page costs its own size, however many schedules exist.
func (s *DB) ScheduleListDue(ctx context.Context, p store.ScheduleListDueParams) ([]store.ScheduleEntry, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	after := int64(math.MinInt64)
	if !p.After.IsZero() {
		after = micros(p.After)
	}
	return s.entries(ctx, `SELECT `+entryColumns+` FROM schedules s JOIN jobs j ON j.id = s.job_id
		WHERE s.done = 0 AND s.next_fire_at <= ? AND (s.next_fire_at, s.id) > (?, ?) AND j.paused = 0
		AND (? <= 1 OR s.id % ? = ?)
		ORDER BY s.next_fire_at, s.id LIMIT ?`, micros(p.Until), after, p.AfterID, p.Slice.Slots, p.Slice.Slots, p.Slice.Slot, limit(p.Limit))
}

// ScheduleListNew implements store.Store, served by the partial index schedules_new.
func (s *DB) ScheduleListNew(ctx context.Context, p store.ScheduleListNewParams) ([]store.ScheduleEntry, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.entries(ctx, `SELECT `+entryColumns+` FROM schedules s JOIN jobs j ON j.id = s.job_id
		WHERE s.next_fire_at IS NULL AND s.done = 0 AND s.id > ? AND j.paused = 0
		AND (? <= 1 OR s.id % ? = ?)
		ORDER BY s.id LIMIT ?`, p.AfterID, p.Slice.Slots, p.Slice.Slots, p.Slice.Slot, limit(p.Limit))
}

func limit(n int) int {
	if n <= 0 {
		return store.ScheduleListLimitDefault
	}
	return n
}

// entries runs a query over entryColumns, decoding each job's spec once.
func (s *DB) entries(ctx context.Context, query string, args ...any) ([]store.ScheduleEntry, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []store.ScheduleEntry
	specs := map[int64]job.Spec{}
	for rows.Next() {
		var e store.ScheduleEntry
		var spec string
		sc, err := scanSchedule(rows, &e.Job, &spec)
		if err != nil {
			return nil, err
		}
		e.Schedule = sc
		sp, ok := specs[sc.JobID]
		if !ok {
			if err := json.Unmarshal([]byte(spec), &sp); err != nil {
				return nil, fmt.Errorf("decode job %s: %w", e.Job, err)
			}
			specs[sc.JobID] = sp
		}
		e.Spec = sp
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// ScheduleInit implements store.Store: one multi-row UPDATE per BulkRowsDefault items
// (three parameters each), so that initialising thousands of new schedules takes a few
// statements, not a round trip each.
func (s *DB) ScheduleInit(ctx context.Context, p store.ScheduleInitParams) ([]bool, error) {
	var out []bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = make([]bool, len(p.Items))
		for lo := 0; lo < len(p.Items); lo += BulkRowsDefault {
			chunk := p.Items[lo:min(lo+BulkRowsDefault, len(p.Items))]
			args := make([]any, 0, 3*len(chunk))
			for _, it := range chunk {
				args = append(args, it.ID, microsPtr(it.NextFireAt), boolInt(it.Done))
			}
			rows, err := tx.QueryContext(ctx, s.q(`WITH v (id, next, done) AS (VALUES `+
				rowsOf("(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))", len(chunk))+`)
				UPDATE schedules SET next_fire_at = v.next, done = v.done FROM v
				WHERE schedules.id = v.id AND schedules.next_fire_at IS NULL AND schedules.done = 0
				RETURNING schedules.id`), args...)
			if err != nil {
				return err
			}
			applied := map[int64]bool{}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				applied[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for i, it := range chunk {
				out[lo+i] = applied[it.ID]
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init schedules: %w", err)
	}
	return out, nil
}
