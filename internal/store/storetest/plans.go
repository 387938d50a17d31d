package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// planner is implemented by the SQL engines: how they plan the statements that change
// runs by batch (sqlstore.DB.ExplainBatches).
type planner interface {
	ExplainBatches(ctx context.Context, ids []int64) (map[string]string, error)
	SQL() *sql.DB
}

// Every statement that changes runs by batch looks each run up by primary key, on a
// table of realistic size (200,000 runs: most finished, 1,500 on nodes, the rest
// queued), before the engine has statistics on it and after: never a scan of the table,
// nor of a partial index of the queue, whose cost would grow with the table or with the
// square of the batch.
func testRunBatchPlans(t *testing.T, s store.Store) {
	p, ok := s.(planner)
	if !ok {
		t.Fatal("the engine does not explain its plans")
	}
	apply(t, s, spec("plan"))
	total, batch := 200_000, 10_000
	if raceEnabled {
		// Still far past what a scan would cost unnoticed (see race_on.go), made in
		// calls small enough for the call timeout on a busy machine.
		total, batch = 40_000, 2_000
	}
	finished := total*893/1000 - 1 // the last id that is finished: 89.3 %, then 1,500 on nodes
	for range total / batch {
		must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "plan", Count: batch, Now: t0}))
	}
	db := p.SQL()
	if _, err := db.ExecContext(ctx(t), fmt.Sprintf(`UPDATE runs SET state = 'succeeded', attempt = 1, token = 'x', node = 'n1', finished_at = created_at
		WHERE id <= (SELECT MIN(id) FROM runs) + %d`, finished)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx(t), fmt.Sprintf(`UPDATE runs SET state = 'running', attempt = 1, token = 't', node = 'n1', started_at = created_at
		WHERE state = 'queued' AND id <= (SELECT MIN(id) FROM runs) + %d`, finished+1500)); err != nil {
		t.Fatal(err)
	}
	var first int64
	if err := db.QueryRowContext(ctx(t), `SELECT MIN(id) FROM runs WHERE state = 'running'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 500)
	for i := range ids {
		ids[i] = first + int64(i)
	}
	check := func(when string) {
		t.Helper()
		plans := must[map[string]string](t)(p.ExplainBatches(ctx(t), ids))
		for _, name := range []string{"assign", "start", "finish", "release"} {
			plan := plans[name]
			t.Logf("%s, %s:\n%s", when, name, plan)
			pkey := strings.Contains(plan, "runs_pkey") || strings.Contains(plan, "INTEGER PRIMARY KEY")
			scan := strings.Contains(plan, "Seq Scan on runs") || strings.Contains(plan, "runs_queued") ||
				strings.Contains(plan, "runs_node_active") || strings.Contains(plan, "SCAN runs")
			if !pkey || scan {
				t.Errorf("%s: %s plan does not look runs up by primary key only:\n%s", when, name, plan)
			}
		}
	}
	check("before statistics")
	if _, err := db.ExecContext(ctx(t), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	check("after ANALYZE")
}
