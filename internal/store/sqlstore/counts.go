// Counts of runs by node and state, and the queue's length and age.

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tandemhq/tandem/internal/store"
)

// RunCounts implements store.Store.
func (s *DB) RunCounts(ctx context.Context) ([]store.RunCount, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT node, state, COUNT(*) FROM runs WHERE state IN `+activeStates+` GROUP BY node, state ORDER BY node, state`))
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return scanRunCounts(rows, "count runs")
}

// scanRunCounts reads (node, state, count) rows and closes them; what says what the
// query was for, in errors.
func scanRunCounts(rows *sql.Rows, what string) ([]store.RunCount, error) {
	defer rows.Close()
	var out []store.RunCount
	for rows.Next() {
		var c store.RunCount
		var state string
		if err := rows.Scan(&c.Node, &state, &c.Count); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c.State = store.RunState(state)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// RunQueueStats implements store.Store, from the partial index of queued runs.
func (s *DB) RunQueueStats(ctx context.Context) (store.QueueStats, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var n int
	var oldest sql.NullInt64
	var now int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*), MIN(created_at), `+s.d.NowSQL+` FROM runs WHERE state = 'queued'`)).Scan(&n, &oldest, &now)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("read the queue: %w", err)
	}
	st := store.QueueStats{Queued: n, Now: instant(now)}
	if oldest.Valid {
		st.Oldest = instant(oldest.Int64)
	}
	return st, nil
}
