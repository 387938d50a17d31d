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

// The disaster-recovery sync's target side: batches and snapshots applied with the
// cursor in one transaction, and the sender's stored state.

func (s *DB) syncTarget(ctx context.Context, qr querier, lock string) (store.SyncTarget, error) {
	var t store.SyncTarget
	var active int
	var applied, promoted, now int64
	err := qr.QueryRowContext(ctx, `SELECT active, source, source_name, cursor, applied_at, promoted_at, `+s.d.NowSQL+
		` FROM sync_target WHERE id = 1`+lock).Scan(&active, &t.Source, &t.SourceName, &t.Cursor, &applied, &promoted, &now)
	if err != nil {
		return t, fmt.Errorf("read the sync target role: %w", err)
	}
	t.Active, t.Now = active != 0, instant(now)
	if applied != 0 {
		t.AppliedAt = instant(applied)
	}
	if promoted != 0 {
		t.PromotedAt = instant(promoted)
	}
	return t, nil
}

// SyncTargetGet implements store.Sync.
func (s *DB) SyncTargetGet(ctx context.Context) (store.SyncTarget, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.syncTarget(ctx, s.db, "")
}

// SyncApply implements store.Sync. A batch the cursor has passed already is a no-op
// (the sender may send it again after a crash); one that starts beyond the cursor
// would leave a gap and is refused.
func (s *DB) SyncApply(ctx context.Context, p store.SyncApplyParams) (store.SyncTarget, error) {
	var t store.SyncTarget
	all, err := prepareChanges(p.Changes, p.Now)
	if err != nil {
		return t, fmt.Errorf("apply sync batch: %w", err)
	}
	ctx, cancel := syncBound(ctx)
	defer cancel()
	err = s.txIn(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = s.syncTarget(ctx, tx, s.d.ForUpdate); err != nil {
			return err
		}
		if err := s.changeLock(ctx, tx); err != nil {
			return err
		}
		switch {
		case !t.Active && t.PromotedAt.IsZero():
			return fmt.Errorf("%w: this cluster was never fully synced (a full sync makes it a target)", store.ErrNotTarget)
		case !t.Active:
			return fmt.Errorf("%w: this cluster was promoted at %s and takes no changes; a full sync makes it a target again",
				store.ErrNotTarget, t.PromotedAt.Format(time.RFC3339))
		case t.Source != p.Source:
			return fmt.Errorf("%w: this cluster is the sync target of %s (fingerprint %s), not of %s (%s)",
				store.ErrSyncSource, t.SourceName, t.Source, p.SourceName, p.Source)
		case t.Cursor >= p.To:
			return nil // applied already
		case t.Cursor < p.From:
			return fmt.Errorf("batch %d..%d does not follow the cursor %d: %w", p.From, p.To, t.Cursor, store.ErrConflict)
		}
		last := p.From
		for _, c := range p.Changes {
			if c.Seq <= last || c.Seq > p.To {
				return fmt.Errorf("change %d is out of order in batch %d..%d: %w", c.Seq, p.From, p.To, store.ErrConflict)
			}
			last = c.Seq
		}
		if err := s.changesApply(ctx, tx, all.after(t.Cursor), p.Now); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE sync_target SET cursor = ?, applied_at = `+s.d.NowSQL+` WHERE id = 1`, p.To); err != nil {
			return fmt.Errorf("move the sync cursor: %w", err)
		}
		t, err = s.syncTarget(ctx, tx, "")
		return err
	})
	if err != nil {
		return t, fmt.Errorf("apply sync batch: %w", err)
	}
	return t, nil
}

// SyncReplace implements store.Sync.
func (s *DB) SyncReplace(ctx context.Context, p store.SyncReplaceParams) (store.SyncTarget, error) {
	var t store.SyncTarget
	for i := range p.Changes {
		p.Changes[i].Seq = p.Seq
	}
	snap, err := prepareChanges(p.Changes, p.Now)
	if err != nil {
		return t, fmt.Errorf("replace the configuration (full sync): %w", err)
	}
	ctx, cancel := syncBound(ctx)
	defer cancel()
	err = s.txIn(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = s.syncTarget(ctx, tx, s.d.ForUpdate); err != nil {
			return err
		}
		if err := s.changeLock(ctx, tx); err != nil {
			return err
		}
		if t.Active && t.Source != p.Source {
			return fmt.Errorf("%w: this cluster is the sync target of %s (fingerprint %s), not of %s (%s); tandem sync promote on it ends that role",
				store.ErrSyncSource, t.SourceName, t.Source, p.SourceName, p.Source)
		}
		keep := map[string]map[string]bool{store.EntityJob: {}, store.EntityRule: {}, store.EntityUser: {}, store.EntityToken: {}, store.EntitySecret: {}}
		for _, c := range p.Changes {
			if c.Op != store.OpApply && c.Op != store.OpSet {
				return fmt.Errorf("snapshot change %s %s: operation %q is not apply or set", c.Entity, c.Key, c.Op)
			}
			if m := keep[c.Entity]; m != nil {
				m[c.Key] = true
			}
		}
		// Everything the snapshot does not have goes first, then the snapshot is applied.
		var gone []store.Change
		names, err := s.names(ctx, tx, `SELECT name FROM jobs ORDER BY name`)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !keep[store.EntityJob][n] {
				gone = append(gone, store.Change{Seq: p.Seq, Entity: store.EntityJob, Key: n, Op: store.OpDelete})
			}
		}
		if names, err = s.names(ctx, tx, `SELECT name FROM rules ORDER BY name`); err != nil {
			return err
		}
		for _, n := range names {
			if !keep[store.EntityRule][n] {
				gone = append(gone, store.Change{Seq: p.Seq, Entity: store.EntityRule, Key: n, Op: store.OpDelete})
			}
		}
		// Users, tokens and secrets the sync brought and the snapshot no longer has; the
		// target's own stay.
		items, err := s.syncItems(ctx, tx)
		if err != nil {
			return err
		}
		for _, it := range items {
			if !keep[it.Entity][it.Key] {
				gone = append(gone, store.Change{Seq: p.Seq, Entity: it.Entity, Key: it.Key, Op: store.OpDelete})
			}
		}
		del, err := prepareChanges(gone, p.Now)
		if err != nil {
			return err
		}
		if err := s.changesApply(ctx, tx, append(del, snap...), p.Now); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE sync_target SET active = 1, source = ?, source_name = ?, cursor = ?, applied_at = `+s.d.NowSQL+` WHERE id = 1`,
			p.Source, p.SourceName, p.Seq); err != nil {
			return fmt.Errorf("record the sync source: %w", err)
		}
		if err := s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: "sync.replaced", Now: p.Now,
			Message: fmt.Sprintf("configuration replaced by a full sync from %s at sequence %d (%d items, %d removed)", p.SourceName, p.Seq, len(p.Changes), len(gone)),
			Data:    map[string]any{"source": p.SourceName, "seq": p.Seq, "items": len(p.Changes), "removed": len(gone)}}}); err != nil {
			return err
		}
		t, err = s.syncTarget(ctx, tx, "")
		return err
	})
	if err != nil {
		return t, fmt.Errorf("replace the configuration (full sync): %w", err)
	}
	return t, nil
}

// names runs a query of one text column.
func (s *DB) names(ctx context.Context, qr querier, query string, args ...any) ([]string, error) {
	rows, err := qr.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// SyncPromote implements store.Sync.
func (s *DB) SyncPromote(ctx context.Context, p store.SyncPromoteParams) (store.SyncTarget, []string, error) {
	var t store.SyncTarget
	var resumed []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		resumed = nil
		var err error
		if t, err = s.syncTarget(ctx, tx, s.d.ForUpdate); err != nil {
			return err
		}
		if err := s.changeLock(ctx, tx); err != nil {
			return err
		}
		if !t.Active {
			return fmt.Errorf("%w: nothing to promote", store.ErrNotTarget)
		}
		held, err := s.names(ctx, tx, `SELECT job FROM sync_held ORDER BY job`)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE sync_target SET active = 0, promoted_at = `+s.d.NowSQL+` WHERE id = 1`); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_held`); err != nil {
			return err
		}
		var cs []changeNew
		for _, n := range held {
			j, err := s.jobSetPausedTx(ctx, tx, store.JobSetPausedParams{Name: n, Paused: false, Now: p.Audit.Now})
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			resumed = append(resumed, n)
			cs = append(cs, changeNew{entity: store.EntityJob, key: n, op: store.OpResume, def: changeOf(j, false)})
		}
		if err := s.changesAppend(ctx, tx, cs); err != nil {
			return err
		}
		if err := s.auditEvent(ctx, tx, "sync.promoted", fmt.Sprintf("sync target role of %s ended (%d jobs resumed)", t.SourceName, len(resumed)),
			p.Audit, map[string]any{"source": t.SourceName, "cursor": t.Cursor, "resumed": len(resumed)}); err != nil {
			return err
		}
		t, err = s.syncTarget(ctx, tx, "")
		return err
	})
	if err != nil {
		return t, nil, fmt.Errorf("promote: %w", err)
	}
	return t, resumed, nil
}

// SyncTimeoutDefault bounds a sync batch's or a full sync's transaction (a snapshot of
// 100,000 jobs is applied in one), where other calls get CallTimeoutDefault.
const SyncTimeoutDefault = 10 * time.Minute

func syncBound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, SyncTimeoutDefault)
}

// applyStep is one step of applying a source's changes: a run of job definitions
// applied together (decoded and encoded before the transaction, so that it does no
// heavy work between statements: PostgreSQL ends a session idle in a transaction for a
// second), or one other change.
type applyStep struct {
	jobs []store.Change
	want []store.ChangeJob
	p    store.JobApplyParams
	enc  []encoded
	one  store.Change
}

type applySteps []applyStep

// after drops the changes at or below a cursor.
func (a applySteps) after(cursor int64) applySteps {
	var out applySteps
	for _, st := range a {
		if st.jobs == nil {
			if st.one.Seq > cursor {
				out = append(out, st)
			}
			continue
		}
		k := 0
		for k < len(st.jobs) && st.jobs[k].Seq <= cursor {
			k++
		}
		if k == len(st.jobs) {
			continue
		}
		st.jobs, st.want, st.p.Jobs, st.enc = st.jobs[k:], st.want[k:], st.p.Jobs[k:], st.enc[k:]
		out = append(out, st)
	}
	return out
}

// prepareChanges groups runs of job applies, pauses and resumes of distinct jobs, and
// decodes and encodes their definitions.
func prepareChanges(cs []store.Change, now time.Time) (applySteps, error) {
	var out applySteps
	for len(cs) > 0 {
		n := 0
		seen := map[string]bool{}
		for n < len(cs) && cs[n].Entity == store.EntityJob && cs[n].Op != store.OpDelete && !seen[cs[n].Key] {
			seen[cs[n].Key] = true
			n++
		}
		if n == 0 {
			out = append(out, applyStep{one: cs[0]})
			cs = cs[1:]
			continue
		}
		st := applyStep{jobs: cs[:n], want: make([]store.ChangeJob, n), p: store.JobApplyParams{Now: now, Jobs: make([]store.JobDef, n)}}
		for i, c := range st.jobs {
			if err := json.Unmarshal(c.Def, &st.want[i]); err != nil {
				return nil, fmt.Errorf("decode job %s of change %d: %w", c.Key, c.Seq, err)
			}
			if st.want[i].Spec.Name != c.Key {
				return nil, fmt.Errorf("change %d names job %q but defines %q", c.Seq, c.Key, st.want[i].Spec.Name)
			}
			d := store.JobDef{Spec: st.want[i].Spec}
			for _, sc := range st.want[i].Schedules {
				d.Schedules = append(d.Schedules, store.ScheduleSpec(sc))
			}
			st.p.Jobs[i] = d
		}
		var err error
		if st.enc, err = encodeAll(st.p); err != nil {
			return nil, err
		}
		out = append(out, st)
		cs = cs[n:]
	}
	return out, nil
}

// changesApply applies prepared changes in tx, in order, and appends them to this
// repository's change log (with the source's sequence and what substitution rewrote).
func (s *DB) changesApply(ctx context.Context, tx *sql.Tx, steps applySteps, now time.Time) error {
	for _, st := range steps {
		if st.jobs != nil {
			if err := s.jobsApplySynced(ctx, tx, st, now); err != nil {
				return err
			}
			continue
		}
		c := st.one
		if err := s.changeApply(ctx, tx, c, now); err != nil {
			return fmt.Errorf("apply change %d (%s %s %s): %w", c.Seq, c.Op, c.Entity, c.Key, err)
		}
	}
	return nil
}

// changeApply applies one change other than a job's apply, pause or resume.
func (s *DB) changeApply(ctx context.Context, tx *sql.Tx, c store.Change, now time.Time) error {
	rec := changeNew{entity: c.Entity, key: c.Key, op: c.Op, sourceSeq: c.Seq, rewritten: c.Rewritten}
	switch {
	case c.Entity == store.EntityJob && c.Op == store.OpDelete:
		if err := s.jobDeleteTx(ctx, tx, store.JobDeleteParams{Name: c.Key}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	case c.Entity == store.EntityRule && c.Op == store.OpDelete:
		if err := s.ruleDeleteTx(ctx, tx, c.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	case c.Entity == store.EntityRule && c.Op == store.OpApply:
		var r store.ChangeRule
		if err := json.Unmarshal(c.Def, &r); err != nil || len(r.Spec) == 0 {
			return fmt.Errorf("decode rule %s: %v", c.Key, err)
		}
		if _, err := s.ruleApplyTx(ctx, tx, store.RuleApplyParams{Rules: []store.RuleDef{{Name: c.Key, Spec: r.Spec}}, Now: now}); err != nil {
			return err
		}
		rec.def = r
	case c.Entity == store.EntitySetting && c.Op == store.OpSet:
		var v store.ChangeSetting
		if err := json.Unmarshal(c.Def, &v); err != nil {
			return fmt.Errorf("decode setting %s: %w", c.Key, err)
		}
		if !slices.Contains(store.SyncedSettings, c.Key) {
			return nil // not configuration here
		}
		return s.settingSetTx(ctx, tx, c.Key, v.Value, now, c.Seq, c.Rewritten)
	case c.Entity == store.EntityUser || c.Entity == store.EntityToken:
		def, err := s.authApplySynced(ctx, tx, c, now)
		if err != nil {
			return err
		}
		rec.def = def
		if err := s.syncItem(ctx, tx, c); err != nil {
			return err
		}
	case c.Entity == store.EntitySecret:
		def, err := s.secretApplySynced(ctx, tx, c, now)
		if err != nil {
			return err
		}
		rec.def = def
		if err := s.syncItem(ctx, tx, c); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown change: entity %q, operation %q", c.Entity, c.Op)
	}
	return s.changesAppend(ctx, tx, []changeNew{rec})
}

// jobsApplySynced applies the definitions of distinct jobs (apply, pause, resume) with
// the pause state and hold they carry.
func (s *DB) jobsApplySynced(ctx context.Context, tx *sql.Tx, st applyStep, now time.Time) error {
	cs, want := st.jobs, st.want
	res, err := s.jobApplyTx(ctx, tx, st.p, st.enc)
	if err != nil {
		return err
	}
	var pause, held, unheld []any
	recs := make([]changeNew, len(cs))
	for i, r := range res {
		j := r.Job
		switch {
		case want[i].Paused && !j.Paused:
			pause = append(pause, j.ID)
			j.Paused = true
		case !want[i].Paused && j.Paused:
			if j, err = s.jobSetPausedTx(ctx, tx, store.JobSetPausedParams{Name: j.Name, Paused: false, Now: now}); err != nil {
				return err
			}
		}
		if want[i].Held {
			held = append(held, j.Name)
		} else {
			unheld = append(unheld, j.Name)
		}
		recs[i] = changeNew{entity: store.EntityJob, key: j.Name, op: cs[i].Op, def: changeOf(j, want[i].Held), sourceSeq: cs[i].Seq, rewritten: cs[i].Rewritten}
	}
	for chunk := range slices.Chunk(pause, BulkRowsDefault) {
		if _, err := s.exec(ctx, tx, `UPDATE jobs SET paused = 1, updated_at = ? WHERE id IN (`+placeholders(len(chunk))+`)`,
			append([]any{micros(now)}, chunk...)...); err != nil {
			return fmt.Errorf("pause synced jobs: %w", err)
		}
	}
	for chunk := range slices.Chunk(unheld, BulkRowsDefault) {
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_held WHERE job IN (`+placeholders(len(chunk))+`)`, chunk...); err != nil {
			return fmt.Errorf("record held jobs: %w", err)
		}
	}
	for chunk := range slices.Chunk(held, BulkRowsDefault) {
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_held (job) VALUES `+rowsOf("(?)", len(chunk))+` ON CONFLICT DO NOTHING`, chunk...); err != nil {
			return fmt.Errorf("record held jobs: %w", err)
		}
	}
	return s.changesAppend(ctx, tx, recs)
}

// SyncSourceGet implements store.Sync.
func (s *DB) SyncSourceGet(ctx context.Context) (store.SyncSource, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var st store.SyncSource
	var paused int
	var errAt, okAt int64
	err := s.db.QueryRowContext(ctx, `SELECT paused, failures, last_error, last_error_at, last_ok_at, acked, target FROM sync_source WHERE id = 1`).
		Scan(&paused, &st.Failures, &st.LastError, &errAt, &okAt, &st.Acked, &st.Target)
	if err != nil {
		return st, fmt.Errorf("read the sync sender's state: %w", err)
	}
	st.Paused = paused != 0
	if errAt != 0 {
		st.LastErrorAt = instant(errAt)
	}
	if okAt != 0 {
		st.LastOKAt = instant(okAt)
	}
	return st, nil
}

// SyncSourceSet implements store.Sync.
func (s *DB) SyncSourceSet(ctx context.Context, st store.SyncSource, events ...store.EventAppendParams) error {
	opt := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return micros(t)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE sync_source SET failures = ?, last_error = ?, last_error_at = ?, last_ok_at = ?, acked = ?, target = ? WHERE id = 1`,
			st.Failures, st.LastError, opt(st.LastErrorAt), opt(st.LastOKAt), st.Acked, st.Target)
		if err != nil {
			return err
		}
		return s.eventsInsert(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("store the sync sender's state: %w", err)
	}
	return nil
}

// SyncSourcePause implements store.Sync.
func (s *DB) SyncSourcePause(ctx context.Context, paused bool, events ...store.EventAppendParams) error {
	q := `UPDATE sync_source SET paused = 1 WHERE id = 1`
	if !paused {
		q = `UPDATE sync_source SET paused = 0, failures = 0 WHERE id = 1`
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, q); err != nil {
			return err
		}
		return s.eventsInsert(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("pause or resume the sync sender: %w", err)
	}
	return nil
}

// authApplySynced applies a user's or an API token's change (upsert by name, or
// delete); it returns the definition to record.
func (s *DB) authApplySynced(ctx context.Context, tx *sql.Tx, c store.Change, now time.Time) (any, error) {
	switch {
	case c.Entity == store.EntityUser && c.Op == store.OpDelete:
		if _, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE user_name = ?`, c.Key); err != nil {
			return nil, err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM users WHERE name = ?`, c.Key)
		return nil, err
	case c.Entity == store.EntityToken && c.Op == store.OpDelete:
		_, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE name = ? AND kind = ?`, c.Key, store.TokenAPI)
		return nil, err
	case c.Entity == store.EntityUser:
		var u store.ChangeUser
		if err := json.Unmarshal(c.Def, &u); err != nil || u.Hash == "" {
			return nil, fmt.Errorf("decode user %s: %v", c.Key, err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, updated_at = excluded.updated_at`,
			c.Key, u.Role, u.Hash, micros(now), micros(now))
		return u, err
	default:
		var tk store.ChangeToken
		if err := json.Unmarshal(c.Def, &tk); err != nil || tk.Hash == "" {
			return nil, fmt.Errorf("decode token %s: %v", c.Key, err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO tokens (name, kind, role, user_name, hash, created_by, created_at, expires_at) VALUES (?, ?, ?, '', ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash, expires_at = excluded.expires_at`,
			c.Key, store.TokenAPI, tk.Role, tk.Hash, tk.CreatedBy, micros(now), microsPtr(tk.ExpiresAt))
		return tk, err
	}
}

// syncItem records that a user, token or secret is the source's (applied) or is gone
// (deleted): a full sync deletes the source's that its snapshot no longer has.
func (s *DB) syncItem(ctx context.Context, tx *sql.Tx, c store.Change) error {
	q := `INSERT INTO sync_items (entity, key) VALUES (?, ?) ON CONFLICT DO NOTHING`
	if c.Op == store.OpDelete {
		q = `DELETE FROM sync_items WHERE entity = ? AND key = ?`
	}
	if _, err := s.exec(ctx, tx, q, c.Entity, c.Key); err != nil {
		return fmt.Errorf("record the synced %s %s: %w", c.Entity, c.Key, err)
	}
	return nil
}

// syncItems lists the users, tokens and secrets the sync brought.
func (s *DB) syncItems(ctx context.Context, tx *sql.Tx) ([]store.Change, error) {
	rows, err := tx.QueryContext(ctx, `SELECT entity, key FROM sync_items ORDER BY entity, key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		if err := rows.Scan(&c.Entity, &c.Key); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// secretApplySynced stores a synced secret's new version (its ciphertext already
// sealed with this repository's key by the receiver), or deletes it; it returns the
// definition to record.
func (s *DB) secretApplySynced(ctx context.Context, tx *sql.Tx, c store.Change, now time.Time) (any, error) {
	if c.Op == store.OpDelete {
		_, err := s.exec(ctx, tx, `DELETE FROM secrets WHERE name = ?`, c.Key)
		return nil, err
	}
	var sc store.ChangeSecret
	if err := json.Unmarshal(c.Def, &sc); err != nil || len(sc.Ciphertext) == 0 {
		return nil, fmt.Errorf("decode secret %s: %v", c.Key, err)
	}
	version, err := s.secretPut(ctx, tx, c.Key, sc.Ciphertext, now)
	if err != nil {
		return nil, err
	}
	return store.ChangeSecret{Version: version, Ciphertext: sc.Ciphertext}, nil
}
