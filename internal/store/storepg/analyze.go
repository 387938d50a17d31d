package storepg

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Stale statistics: a table is analyzed again once this many rows changed since its last
// analysis and they are at least staleFraction of the rows it had then. Autovacuum's
// own threshold is 50 rows + 10 %, looked at once a minute: a queue growing by thousands
// a second passes it many times over before it looks.
const (
	staleRows     = 1000
	staleFraction = 0.2
)

// Analyze implements store.Analyzer: it analyzes the repository's tables whose
// statistics are stale, and returns their names.
func (s *Store) Analyze(ctx context.Context) ([]string, error) {
	db := s.SQL()
	rows, err := db.QueryContext(ctx, `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze >= $1
		AND s.n_mod_since_analyze >= $2 * GREATEST(c.reltuples, 0) ORDER BY s.relname`, staleRows, staleFraction)
	if err != nil {
		return nil, fmt.Errorf("find tables with stale statistics: %w", err)
	}
	var stale []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find tables with stale statistics: %w", err)
		}
		stale = append(stale, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find tables with stale statistics: %w", err)
	}
	for _, t := range stale {
		if _, err := db.ExecContext(ctx, `ANALYZE `+pgx.Identifier{t}.Sanitize()); err != nil {
			return nil, fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return stale, nil
}
