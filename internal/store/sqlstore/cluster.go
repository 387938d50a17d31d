package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// ClusterRead implements store.Store: one UNION ALL statement, so a status table (read
// every second while a console page shows it) costs the repository one query.
func (s *DB) ClusterRead(ctx context.Context) (store.ClusterView, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	const real0 = `CAST(0 AS DOUBLE PRECISION)`
	q := `SELECT 0, id, holder, address, mode, tags, version, priority, capacity, running, started_at, heartbeat_at, weight FROM nodes
		UNION ALL SELECT 1, node, state, '', '', '', '', COUNT(*), 0, 0, 0, 0, ` + real0 + ` FROM runs WHERE state IN ` + activeStates + ` GROUP BY node, state
		UNION ALL SELECT 2, name, holder, successor, '', '', '', epoch, 0, 0, expires_at, ` + s.d.NowSQL + `, ` + real0 + ` FROM leases
		UNION ALL SELECT 3, target, kind, set_by, '', '', '', 0, 0, 0, set_at, 0, ` + real0 + ` FROM holds`
	rows, err := s.db.QueryContext(ctx, s.q(q))
	if err != nil {
		return store.ClusterView{}, fmt.Errorf("read the cluster's status: %w", err)
	}
	defer rows.Close()
	var v store.ClusterView
	for rows.Next() {
		var kind int
		var a, b, c, d, e, f string
		var i1, i2, i3, t1, t2 int64
		var w float64
		if err := rows.Scan(&kind, &a, &b, &c, &d, &e, &f, &i1, &i2, &i3, &t1, &t2, &w); err != nil {
			return v, fmt.Errorf("read the cluster's status: %w", err)
		}
		switch kind {
		case 0:
			n := store.Node{ID: a, Holder: b, Address: c, Mode: d, Version: f, Priority: int(i1), Capacity: int(i2), Running: int(i3),
				StartedAt: instant(t1), HeartbeatAt: instant(t2), Weight: w}
			if err := json.Unmarshal([]byte(e), &n.Tags); err != nil {
				return v, fmt.Errorf("decode tags of node %s: %w", a, err)
			}
			v.Nodes = append(v.Nodes, n)
		case 1:
			v.Counts = append(v.Counts, store.RunCount{Node: a, State: store.RunState(b), Count: int(i1)})
		case 2:
			v.Leases = append(v.Leases, store.Lease{Name: a, Holder: b, Successor: c, Epoch: i1, ExpiresAt: instant(t1), Now: instant(t2)})
		case 3:
			v.Holds = append(v.Holds, store.Hold{Target: a, Kind: b, By: c, At: instant(t1)})
		}
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("read the cluster's status: %w", err)
	}
	slices.SortFunc(v.Nodes, func(x, y store.Node) int { return strings.Compare(x.ID, y.ID) })
	slices.SortFunc(v.Counts, func(x, y store.RunCount) int {
		return strings.Compare(x.Node+"\x00"+string(x.State), y.Node+"\x00"+string(y.State))
	})
	slices.SortFunc(v.Leases, func(x, y store.Lease) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(v.Holds, func(x, y store.Hold) int { return strings.Compare(x.Target, y.Target) })
	return v, nil
}
