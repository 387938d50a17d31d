package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// The configuration change log. meta.config_version is its counter: each change takes
// the next value in the transaction that makes it, and the counter's row stays locked
// (on PostgreSQL; SQLite has one writer) until that transaction ends, so sequences are
// gap-free and commit in order.

// changeNew is a change to append.
type changeNew struct {
	entity, key, op string
	def             any // encoded as JSON; nil: none
	sourceSeq       int64
	rewritten       []string
}

// changesAppend appends changes in tx with the next sequences and wakes the schedulers.
func (s *DB) changesAppend(ctx context.Context, tx *sql.Tx, cs []changeNew) error {
	if len(cs) == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, s.q(`UPDATE meta SET value = value + ? WHERE key = 'config_version' RETURNING value`), len(cs)).Scan(&last); err != nil {
		return fmt.Errorf("take change sequences: %w", err)
	}
	seq := last - int64(len(cs))
	for chunk := range slices.Chunk(cs, 200) {
		args := make([]any, 0, 7*len(chunk))
		for _, c := range chunk {
			seq++
			var def any
			if c.def != nil {
				b, err := json.Marshal(c.def)
				if err != nil {
					return fmt.Errorf("encode change of %s %s: %w", c.entity, c.key, err)
				}
				def = string(b)
			}
			args = append(args, seq, c.entity, c.key, c.op, def, c.sourceSeq, strings.Join(c.rewritten, "\n"))
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO changes (seq, at, entity, key, op, def, source_seq, rewritten) VALUES `+
			rowsOf("(?, "+s.d.NowSQL+", ?, ?, ?, ?, ?, ?)", len(chunk)), args...); err != nil {
			return fmt.Errorf("append changes: %w", err)
		}
	}
	return s.notify(ctx, tx, TopicConfig, "")
}

// changeOf is the change log's record of a stored job.
func changeOf(j store.Job, held bool) store.ChangeJob {
	c := store.ChangeJob{Spec: j.Spec, Paused: j.Paused, Held: held, Schedules: []store.ChangeSchedule{}}
	for _, sc := range j.Schedules {
		c.Schedules = append(c.Schedules, store.ChangeSchedule{Key: sc.Key, Expr: sc.Expr})
	}
	return c
}

// configWritable refuses a local configuration change on an active sync target.
func (s *DB) configWritable(ctx context.Context, tx *sql.Tx) error {
	var active int
	var name string
	// Shared lock: a full sync or a promotion (which lock the row for update) waits for
	// this change's transaction, and it for theirs.
	if err := tx.QueryRowContext(ctx, `SELECT active, source_name FROM sync_target WHERE id = 1`+s.d.ForShare).Scan(&active, &name); err != nil {
		return fmt.Errorf("read the sync target role: %w", err)
	}
	if active != 0 {
		return &store.SyncTargetError{Source: name}
	}
	return s.changeLock(ctx, tx)
}

// changeLock takes the change log's counter row up front (PostgreSQL), before the
// events lock a configuration change also takes: every transaction takes the sync
// target row, then the counter, then the events lock, in that order, so none waits for
// another in a circle.
func (s *DB) changeLock(ctx context.Context, tx *sql.Tx) error {
	if s.d.ForUpdate == "" {
		return nil
	}
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'config_version'`+s.d.ForUpdate).Scan(&v); err != nil {
		return fmt.Errorf("lock the change log: %w", err)
	}
	return nil
}

// ChangeList implements store.Sync.
func (s *DB) ChangeList(ctx context.Context, p store.ChangeListParams) ([]store.Change, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, at, entity, key, op, def, source_seq, rewritten FROM changes
		WHERE seq > ? ORDER BY seq LIMIT ?`), p.After, limit)
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var at int64
		var def sql.NullString
		var rw string
		if err := rows.Scan(&c.Seq, &at, &c.Entity, &c.Key, &c.Op, &def, &c.SourceSeq, &rw); err != nil {
			return nil, fmt.Errorf("list changes: %w", err)
		}
		c.At = instant(at)
		if def.Valid {
			c.Def = json.RawMessage(def.String)
		}
		if rw != "" {
			c.Rewritten = strings.Split(rw, "\n")
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ChangeLogState implements store.Sync.
func (s *DB) ChangeLogState(ctx context.Context) (store.ChangeLog, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var l store.ChangeLog
	var oldest, at sql.NullInt64
	var now int64
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT value FROM meta WHERE key = 'config_version'),
		(SELECT MIN(seq) FROM changes), (SELECT at FROM changes ORDER BY seq DESC LIMIT 1), `+s.d.NowSQL).Scan(&l.Latest, &oldest, &at, &now)
	if err != nil {
		return l, fmt.Errorf("read the change log: %w", err)
	}
	l.Oldest, l.Now = oldest.Int64, instant(now)
	if at.Valid {
		l.LatestAt = instant(at.Int64)
	}
	return l, nil
}

// ChangePrune implements store.Sync.
func (s *DB) ChangePrune(ctx context.Context, p store.ChangePruneParams) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.exec(ctx, tx, `DELETE FROM changes WHERE at < ? AND seq <= (SELECT value FROM meta WHERE key = 'config_version') - ?`,
			micros(p.Before), max(p.Keep, 0))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune the change log: %w", err)
	}
	return int(n), nil
}

// ConfigSnapshot implements store.Sync: one read transaction (repeatable read on
// PostgreSQL) sees the configuration as of one sequence.
func (s *DB) ConfigSnapshot(ctx context.Context) (store.Snapshot, error) {
	var snap store.Snapshot
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		snap = store.Snapshot{}
		if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'config_version'`).Scan(&snap.Seq); err != nil {
			return err
		}
		jobs, err := s.jobListTx(ctx, tx)
		if err != nil {
			return err
		}
		held, err := s.heldJobs(ctx, tx)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			snap.Changes = append(snap.Changes, mustChange(store.EntityJob, j.Name, store.OpApply, changeOf(j, held[j.Name])))
		}
		rules, err := s.ruleListTx(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rules {
			snap.Changes = append(snap.Changes, mustChange(store.EntityRule, r.Name, store.OpApply, store.ChangeRule{Spec: r.Spec}))
		}
		if err := s.authSnapshot(ctx, tx, &snap); err != nil {
			return err
		}
		if err := s.secretSnapshot(ctx, tx, &snap); err != nil {
			return err
		}
		for _, k := range store.SyncedSettings {
			var v string
			err := tx.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE key = ?`), k).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			snap.Changes = append(snap.Changes, mustChange(store.EntitySetting, k, store.OpSet, store.ChangeSetting{Value: v}))
		}
		return nil
	})
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("read a configuration snapshot: %w", err)
	}
	return snap, nil
}

// mustChange makes a Change of a definition that always encodes.
func mustChange(entity, key, op string, def any) store.Change {
	b, err := json.Marshal(def)
	if err != nil {
		panic(fmt.Sprintf("encode %s %s: %v", entity, key, err)) // plain structs: cannot fail
	}
	return store.Change{Entity: entity, Key: key, Op: op, Def: b}
}

// readTx runs fn in a read transaction that sees one snapshot.
func (s *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.OneWriter {
		return s.tx(ctx, fn) // one writer: a transaction sees one state anyway
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// heldJobs are the jobs the sync holds paused.
func (s *DB) heldJobs(ctx context.Context, qr querier) (map[string]bool, error) {
	rows, err := qr.QueryContext(ctx, `SELECT job FROM sync_held`)
	if err != nil {
		return nil, fmt.Errorf("read held jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// authSnapshot adds the users and API tokens to a snapshot.
func (s *DB) authSnapshot(ctx context.Context, tx *sql.Tx, snap *store.Snapshot) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, role, password_hash FROM users ORDER BY name`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		var u store.ChangeUser
		if err := rows.Scan(&n, &u.Role, &u.Hash); err != nil {
			rows.Close()
			return err
		}
		snap.Changes = append(snap.Changes, mustChange(store.EntityUser, n, store.OpApply, u))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, s.q(`SELECT name, role, hash, created_by, expires_at FROM tokens WHERE kind = ? ORDER BY name`), store.TokenAPI)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		var tk store.ChangeToken
		var exp sql.NullInt64
		if err := rows.Scan(&n, &tk.Role, &tk.Hash, &tk.CreatedBy, &exp); err != nil {
			return err
		}
		tk.ExpiresAt = instantPtr(exp)
		snap.Changes = append(snap.Changes, mustChange(store.EntityToken, n, store.OpApply, tk))
	}
	return rows.Err()
}

// secretSnapshot adds the secrets, still encrypted, to a snapshot.
func (s *DB) secretSnapshot(ctx context.Context, tx *sql.Tx, snap *store.Snapshot) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, version, ciphertext FROM secrets ORDER BY name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n, ct string
		var sc store.ChangeSecret
		if err := rows.Scan(&n, &sc.Version, &ct); err != nil {
			return err
		}
		if sc.Ciphertext, err = base64.StdEncoding.DecodeString(ct); err != nil {
			return fmt.Errorf("secret %s: %w", n, err)
		}
		snap.Changes = append(snap.Changes, mustChange(store.EntitySecret, n, store.OpApply, sc))
	}
	return rows.Err()
}
