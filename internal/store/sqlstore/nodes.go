package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

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
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		q, arg := `UPDATE nodes SET mode = 'lost' WHERE id = ? AND mode <> 'lost' AND heartbeat_at < ?`, any(micros(now.Add(-p.Silence)))
		if p.Dead != "" {
			q, arg = `UPDATE nodes SET mode = 'lost' WHERE id = ? AND mode NOT IN ('lost', 'stopped') AND holder = ?`, p.Dead
		}
		// Locked for update before it is marked lost: the assignments to the node in
		// progress hold a key-share lock on the row (RunAssign), so this waits for them
		// to commit and their runs are among those read below; one that starts later
		// waits for this transaction and then finds the node lost. (Marked first, the
		// row's new version would not carry their locks, and a run given to the node
		// meanwhile would be left on it.)
		if err := s.lockNode(ctx, tx, p.Node); err != nil {
			return err
		}
		var mode string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT mode FROM nodes WHERE id = ?`), p.Node).Scan(&mode); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read node %s: %w", p.Node, err)
		}
		k, err := s.exec(ctx, tx, q, p.Node, arg)
		if err != nil || k == 0 {
			return err
		}
		res.Lost = true
		if err := s.loseCopies(ctx, tx, p, now, &res); err != nil {
			return err
		}
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
		// The node's claims are free; runs that ended here have their delivery records
		// and events, and those queued again theirs (events last: see eventsInsert).
		if err := s.deliveriesNodeLost(ctx, tx, p.Node); err != nil {
			return err
		}
		if err := s.deliveriesCreate(ctx, tx, res.Failed); err != nil {
			return err
		}
		if err := s.runEvents(ctx, tx, res.Requeued); err != nil {
			return err
		}
		msg := fmt.Sprintf("node %s lost: %s; re-queued %d runs", p.Node, cmpOrString(p.Why, "declared lost"), len(res.Requeued))
		if len(res.Failed) > 0 {
			msg += fmt.Sprintf(", failed %d with no attempt left", len(res.Failed))
		}
		if mode == "primary" || mode == "suspended" {
			msg = "primary " + msg
		}
		evs := []store.EventAppendParams{{Type: "node.lost", Node: p.By, Now: now, Message: msg,
			Data: map[string]any{"node": p.Node, "requeued": orEmpty(res.Requeued), "failed": orEmpty(res.Failed), "dead": p.Dead != "",
				"mode": mode, "was_primary": mode == "primary" || mode == "suspended", "reason": p.Why}}}
		if p.Events != nil {
			for _, ev := range p.Events(res) {
				if ev.Now.IsZero() {
					ev.Now = now
				}
				evs = append(evs, ev)
			}
		}
		if err := s.eventsInsert(ctx, tx, evs); err != nil {
			return err
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

func orEmpty(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// closedMode says a node in this mode is given no runs (RunAssign skips it).
func closedMode(mode string) bool {
	return mode == "draining" || mode == "stopping" || mode == "stopped" || mode == "lost"
}

// lockNode locks a node's row for update ahead of a change of its mode that closes it to
// assignments: the assignments in progress to it hold a key-share lock on the row
// (RunAssign), so this waits until they commit, and what the caller reads of the node's
// runs afterwards includes them. Ordinary heartbeats do not lock the row this way and
// never wait for an assignment.
func (s *DB) lockNode(ctx context.Context, tx *sql.Tx, id string) error {
	if s.d.ForUpdate == "" {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM nodes WHERE id = ?`+s.d.ForUpdate), id).Scan(&one)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock node %s: %w", id, err)
	}
	return nil
}

const nodeColumns = `id, holder, address, mode, priority, capacity, running, weight, tags, started_at, heartbeat_at, version`

// NodeClaim implements store.Store.
func (s *DB) NodeClaim(ctx context.Context, p store.NodeClaimParams) error {
	n := p.Node
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var holder string
		err := tx.QueryRowContext(ctx, s.q(`SELECT holder FROM nodes WHERE id = ?`+s.d.ForUpdate), n.ID).Scan(&holder)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case holder != p.Replace && holder != n.Holder:
			return fmt.Errorf("held by %s: %w", holder, store.ErrClaimed)
		}
		if _, err := s.upsertNode(ctx, tx, n, true); err != nil {
			return err
		}
		return s.eventsInsert(ctx, tx, p.Events)
	})
	if err != nil {
		return fmt.Errorf("claim node %s: %w", n.ID, err)
	}
	return nil
}

// NodeHeartbeat implements store.Store. Only the claiming process's heartbeat is
// recorded.
func (s *DB) NodeHeartbeat(ctx context.Context, p store.NodeHeartbeatParams) error {
	n := p.Node
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if closedMode(n.Mode) {
			if err := s.lockNode(ctx, tx, n.ID); err != nil {
				return err
			}
		}
		k, err := s.upsertNode(ctx, tx, n, false)
		if err == nil && k == 0 {
			err = store.ErrClaimed
		}
		if err != nil {
			return err
		}
		return s.eventsInsert(ctx, tx, p.Events)
	})
	if err != nil {
		return fmt.Errorf("heartbeat node %s: %w", n.ID, err)
	}
	return nil
}

// upsertNode writes a node's row stamped with the repository's clock. A claim takes the
// row for n.Holder whoever had it; otherwise the row changes only while it is still
// n.Holder's (it returns 0 rows when another process claimed it).
func (s *DB) upsertNode(ctx context.Context, tx *sql.Tx, n store.Node, claim bool) (int64, error) {
	tags, err := json.Marshal(n.Tags)
	if err != nil {
		return 0, fmt.Errorf("encode tags: %w", err)
	}
	now, err := s.now(ctx, tx)
	if err != nil {
		return 0, err
	}
	set, where := "", " WHERE nodes.holder = excluded.holder"
	if claim {
		set, where = "holder = excluded.holder, ", ""
	}
	return s.exec(ctx, tx, `INSERT INTO nodes (`+nodeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET `+set+`address = excluded.address, mode = excluded.mode, priority = excluded.priority,
		capacity = excluded.capacity, running = excluded.running, weight = excluded.weight, tags = excluded.tags,
		started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, version = excluded.version`+where,
		n.ID, n.Holder, n.Address, n.Mode, n.Priority, n.Capacity, n.Running, weightOf(n), string(tags), micros(n.StartedAt), micros(now), n.Version)
}

// NodeList implements store.Store.
func (s *DB) NodeList(ctx context.Context) ([]store.Node, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+nodeColumns+` FROM nodes ORDER BY id`))
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []store.Node
	for rows.Next() {
		var n store.Node
		var tags string
		var started, beat int64
		if err := rows.Scan(&n.ID, &n.Holder, &n.Address, &n.Mode, &n.Priority, &n.Capacity, &n.Running, &n.Weight, &tags, &started, &beat, &n.Version); err != nil {
			return nil, fmt.Errorf("scan node: %w", err)
		}
		if err := json.Unmarshal([]byte(tags), &n.Tags); err != nil {
			return nil, fmt.Errorf("decode tags of node %s: %w", n.ID, err)
		}
		n.StartedAt, n.HeartbeatAt = instant(started), instant(beat)
		out = append(out, n)
	}
	return out, rows.Err()
}

// HoldSet implements store.Store.
func (s *DB) HoldSet(ctx context.Context, h store.Hold, events ...store.EventAppendParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO holds (target, kind, set_by, set_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (target) DO UPDATE SET kind = excluded.kind, set_by = excluded.set_by, set_at = excluded.set_at`,
			h.Target, h.Kind, h.By, micros(h.At))
		if err != nil || len(events) == 0 {
			return err
		}
		return s.eventsInsert(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("set hold on %s: %w", h.Target, err)
	}
	return nil
}

// HoldClear implements store.Store.
func (s *DB) HoldClear(ctx context.Context, target string, events ...store.EventAppendParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		k, err := s.exec(ctx, tx, `DELETE FROM holds WHERE target = ?`, target)
		if err == nil && k == 0 {
			err = store.ErrNotFound
		}
		if err != nil || len(events) == 0 {
			return err
		}
		return s.eventsInsert(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("clear hold on %s: %w", target, err)
	}
	return nil
}

// HoldList implements store.Store.
func (s *DB) HoldList(ctx context.Context) ([]store.Hold, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.holdList(ctx, s.db)
}

func (s *DB) holdList(ctx context.Context, qr querier) ([]store.Hold, error) {
	rows, err := qr.QueryContext(ctx, s.q(`SELECT target, kind, set_by, set_at FROM holds ORDER BY target`))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	defer rows.Close()
	var out []store.Hold
	for rows.Next() {
		var h store.Hold
		var at int64
		if err := rows.Scan(&h.Target, &h.Kind, &h.By, &at); err != nil {
			return nil, fmt.Errorf("scan hold: %w", err)
		}
		h.At = instant(at)
		out = append(out, h)
	}
	return out, rows.Err()
}

// weightOf is a node's weight as stored: 1 unless set.
func weightOf(n store.Node) float64 {
	if n.Weight <= 0 {
		return 1
	}
	return n.Weight
}

// SettingGet implements store.Store.
func (s *DB) SettingGet(ctx context.Context, key string) (string, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("setting", key)
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

// SettingSet implements store.Store.
func (s *DB) SettingSet(ctx context.Context, key, value string, now time.Time, events ...store.EventAppendParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.settingSetTx(ctx, tx, key, value, now, 0, nil); err != nil {
			return err
		}
		return s.eventsInsert(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("store setting %s: %w", key, err)
	}
	return nil
}

// settingSetTx stores a setting in tx; a synced setting whose value changes appends its
// change (sourceSeq and rewritten: what a target records).
func (s *DB) settingSetTx(ctx context.Context, tx *sql.Tx, key, value string, now time.Time, sourceSeq int64, rewritten []string) error {
	logged := slices.Contains(store.SyncedSettings, key)
	if logged {
		var old string
		err := tx.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE key = ?`+s.d.ForUpdate), key).Scan(&old)
		if err == nil && old == value {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, micros(now)); err != nil {
		return err
	}
	if !logged {
		return nil
	}
	return s.changesAppend(ctx, tx, []changeNew{{entity: store.EntitySetting, key: key, op: store.OpSet,
		def: store.ChangeSetting{Value: value}, sourceSeq: sourceSeq, rewritten: rewritten}})
}
