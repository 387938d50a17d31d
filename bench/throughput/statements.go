package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/pgtest"
)

// With -statements N the bench's own PostgreSQL server loads pg_stat_statements, and
// after each tandem repetition the N statements that took the most execution time in its
// database are printed on stderr: calls, rows per call, mean and total time.

// loadStatements makes the server load pg_stat_statements (a restart) and creates the
// extension in the administrative database, where the bench reads it.
func (r *repos) loadStatements(ctx context.Context) error {
	if r.srv == nil {
		return fmt.Errorf("-statements: only on the server the bench starts (not %s)", pgtest.EnvURL)
	}
	if err := r.admin(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"); err != nil {
		return err
	}
	if err := r.srv.Restart(ctx, pgtest.RestartOptions{}); err != nil {
		return fmt.Errorf("restart PostgreSQL with pg_stat_statements: %w", err)
	}
	return r.admin(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
}

// resetStatements forgets what was measured so far.
func (r *repos) resetStatements(ctx context.Context) error {
	return r.admin(ctx, "SELECT pg_stat_statements_reset()")
}

// printStatements prints the top statements of database db (a URL).
func (r *repos) printStatements(ctx context.Context, db string, top int) error {
	conn, err := pgx.Connect(ctx, r.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	u, err := url.Parse(db)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	rows, err := conn.Query(ctx, `SELECT calls, rows, mean_exec_time, total_exec_time, query FROM pg_stat_statements s
		JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 ORDER BY total_exec_time DESC LIMIT $2`, name, top)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintf(os.Stderr, "  top statements (pg_stat_statements):\n")
	for rows.Next() {
		var calls, n int64
		var mean, total float64
		var q string
		if err := rows.Scan(&calls, &n, &mean, &total, &q); err != nil {
			return err
		}
		q = strings.Join(strings.Fields(q), " ")
		if len(q) > 110 {
			q = q[:110] + "…"
		}
		fmt.Fprintf(os.Stderr, "  %8.0f ms %8d calls %7.1f rows/call %7.2f ms/call  %s\n", total, calls, float64(n)/float64(max(calls, 1)), mean, q)
	}
	return rows.Err()
}
