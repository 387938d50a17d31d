package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tandemhq/tandem/internal/store"
)

// NodeLose implements store.Store. The node must be silent by the repository's clock and
// not already lost; its assigned and running runs go back to the queue for their next
// attempt (their tokens are cleared, so the lost node's results are refused), or fail
// when no attempt is left.
func (s *DB) NodeLose(ctx context.Context, p store.NodeLoseParams) (store.NodeLoseResult, error) {
	var res store.NodeLoseResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = store.NodeLoseResult{}
		if err := s.checkEpoch(ctx, tx, p.Epoch); err != nil {
			return err
		}
		now, err := s.now(ctx, tx, p.Now)
		if err != nil {
			return err
		}
		k, err := s.exec(ctx, tx, `UPDATE nodes SET mode = 'lost' WHERE id = ? AND mode <> 'lost' AND heartbeat_at < ?`,
			p.Node, micros(now.Add(-p.Silence)))
		if err != nil || k == 0 {
			return err
		}
		res.Lost = true
		runs, err := s.runs(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE node = ? AND state IN ('assigned', 'running')`+s.d.ForUpdate, p.Node)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.State == store.RunAssigned {
				// Never started there: the attempt did not happen, so it is not spent.
				_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'queued', node = '', token = '', attempt = attempt - 1, not_before = ?,
					reason = ? WHERE id = ?`, micros(now), fmt.Sprintf("node %s lost before starting the run; queued again", p.Node), r.ID)
				res.Requeued = append(res.Requeued, r.ID)
			} else if r.Attempt < r.MaxAttempts && !r.CancelRequested {
				_, err = s.exec(ctx, tx, `UPDATE runs SET state = 'queued', node = '', token = '', started_at = NULL, not_before = ?,
					reason = ? WHERE id = ?`, micros(now), fmt.Sprintf("node %s lost during attempt %d; queued again", p.Node, r.Attempt), r.ID)
				res.Requeued = append(res.Requeued, r.ID)
			} else {
				state, why := store.RunFailed, fmt.Sprintf("node %s lost during attempt %d; no attempt left", p.Node, r.Attempt)
				if r.CancelRequested {
					state, why = store.RunCanceled, fmt.Sprintf("node %s lost while the run was being canceled", p.Node)
				}
				_, err = s.exec(ctx, tx, `UPDATE runs SET state = ?, token = '', finished_at = ?, reason = ? WHERE id = ?`,
					string(state), micros(now), why, r.ID)
				res.Failed = append(res.Failed, r.ID)
			}
			if err != nil {
				return fmt.Errorf("re-queue run %d: %w", r.ID, err)
			}
		}
		if len(res.Requeued) > 0 {
			return s.notify(ctx, tx, TopicRuns, "")
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("declare node %s lost: %w", p.Node, err)
	}
	return res, nil
}
