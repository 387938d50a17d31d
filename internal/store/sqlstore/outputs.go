package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

const outputColumns = `o.run_id, o.attempt, o.name, o.size, o.sha256, o.node, o.created_at, o.copies`

// recordOutputs records the output files of an attempt that ends, each with the node
// that produced it as its first verified holder, in the transaction that ends it.
func (s *DB) recordOutputs(ctx context.Context, tx *sql.Tx, p store.RunFinishParams, attempt int, node string) error {
	for _, o := range p.Outputs {
		if _, err := s.exec(ctx, tx, `INSERT INTO outputs (run_id, attempt, name, size, sha256, node, created_at, copies)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.RunID, attempt, o.Name, o.Size, o.SHA256, node, micros(p.Now), o.Copies); err != nil {
			return fmt.Errorf("record output %s of run %d: %w", o.Name, p.RunID, err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO output_holders (run_id, attempt, name, node, verified_at) VALUES (?, ?, ?, ?, ?)`,
			p.RunID, attempt, o.Name, node, micros(p.Now)); err != nil {
			return fmt.Errorf("record the holder of output %s of run %d: %w", o.Name, p.RunID, err)
		}
	}
	return nil
}

// OutputList implements store.Store: the outputs of a run's latest attempt that has any.
func (s *DB) OutputList(ctx context.Context, runID int64) ([]store.Output, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	out, err := s.outputs(ctx, s.db, `SELECT `+outputColumns+` FROM outputs o
		WHERE o.run_id = ? AND o.attempt = (SELECT MAX(attempt) FROM outputs WHERE run_id = ?) ORDER BY o.name`, runID, runID)
	if err != nil {
		return nil, fmt.Errorf("list outputs of run %d: %w", runID, err)
	}
	return out, nil
}

// OutputFind implements store.Store.
func (s *DB) OutputFind(ctx context.Context, p store.OutputFindParams) ([]store.Output, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	limit := p.Limit
	if limit <= 0 {
		limit = store.OutputFindLimitDefault
	}
	q, args := `SELECT `+outputColumns+` FROM outputs o`, []any{}
	switch {
	case p.NeedsCopies:
		q += ` JOIN runs r ON r.id = o.run_id WHERE o.needs_copies = 1 AND r.finished_at IS NOT NULL`
	case len(p.RunIDs) > 0:
		q += ` WHERE o.run_id IN (` + placeholders(len(p.RunIDs)) + `)`
		for _, id := range p.RunIDs {
			args = append(args, id)
		}
	case p.RunID > 0:
		q += ` WHERE o.run_id = ?`
		args = append(args, p.RunID)
	}
	if p.NeedsCopies {
		q += ` ORDER BY o.run_id, o.attempt, o.name LIMIT ?`
	} else {
		q += ` ORDER BY o.run_id DESC, o.attempt, o.name LIMIT ?`
	}
	out, err := s.outputs(ctx, s.db, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("find outputs: %w", err)
	}
	return out, nil
}

// outputs reads outputs (selected as outputColumns) and their holders.
func (s *DB) outputs(ctx context.Context, qr querier, q string, args ...any) ([]store.Output, error) {
	rows, err := qr.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	out, err := scanOutputs(rows)
	if err != nil || len(out) == 0 {
		return out, err
	}
	runs := map[int64]bool{}
	var ids []any
	for _, o := range out {
		if !runs[o.RunID] {
			runs[o.RunID] = true
			ids = append(ids, o.RunID)
		}
	}
	hrows, err := qr.QueryContext(ctx, s.q(`SELECT run_id, attempt, name, node, verified_at, claim_until, lost_at
		FROM output_holders WHERE run_id IN (`+placeholders(len(ids))+`) ORDER BY node`), ids...)
	if err != nil {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	holders, err := scanHolders(hrows)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Holders = holders[out[i].Ref()]
	}
	return out, nil
}

func scanOutputs(rows *sql.Rows) ([]store.Output, error) {
	defer rows.Close()
	var out []store.Output
	for rows.Next() {
		var o store.Output
		var created int64
		if err := rows.Scan(&o.RunID, &o.Attempt, &o.Name, &o.Size, &o.SHA256, &o.Node, &created, &o.Copies); err != nil {
			return nil, fmt.Errorf("scan output: %w", err)
		}
		o.CreatedAt = instant(created)
		out = append(out, o)
	}
	return out, rows.Err()
}

func scanHolders(rows *sql.Rows) (map[store.OutputRef][]store.Holder, error) {
	defer rows.Close()
	out := map[store.OutputRef][]store.Holder{}
	for rows.Next() {
		var ref store.OutputRef
		var h store.Holder
		var verified, claim, lost sql.NullInt64
		if err := rows.Scan(&ref.RunID, &ref.Attempt, &ref.Name, &h.Node, &verified, &claim, &lost); err != nil {
			return nil, fmt.Errorf("scan holder: %w", err)
		}
		h.VerifiedAt, h.ClaimUntil, h.LostAt = instantPtr(verified), instantPtr(claim), instantPtr(lost)
		out[ref] = append(out[ref], h)
	}
	return out, rows.Err()
}

// lockOutput reads an output's row for update inside tx; ErrNotFound when it is gone.
func (s *DB) lockOutput(ctx context.Context, tx *sql.Tx, ref store.OutputRef) ([]store.Holder, error) {
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM outputs WHERE run_id = ? AND attempt = ? AND name = ?`+s.d.ForUpdate),
		ref.RunID, ref.Attempt, ref.Name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("output", ref.String())
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT run_id, attempt, name, node, verified_at, claim_until, lost_at
		FROM output_holders WHERE run_id = ? AND attempt = ? AND name = ?`), ref.RunID, ref.Attempt, ref.Name)
	if err != nil {
		return nil, err
	}
	hs, err := scanHolders(rows)
	return hs[ref], err
}

// OutputClaimBatch implements store.Store: every claim in one transaction, each judged
// on its own (an item refused changes nothing of its own).
func (s *DB) OutputClaimBatch(ctx context.Context, ps []store.OutputClaimParams) ([]error, error) {
	errs := make([]error, len(ps))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		for i, p := range ps {
			errs[i] = nil
			err := s.claim(ctx, tx, now, p)
			switch {
			case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
				errs[i] = fmt.Errorf("claim a copy of output %s: %w", p.Ref, err)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim copies of %d outputs: %w", len(ps), err)
	}
	return errs, nil
}

func (s *DB) claim(ctx context.Context, tx *sql.Tx, now time.Time, p store.OutputClaimParams) error {
	holders, err := s.lockOutput(ctx, tx, p.Ref)
	if err != nil {
		return err
	}
	taken := 0
	for _, h := range holders {
		switch {
		case h.Node == p.Node && h.Verified():
			return fmt.Errorf("node %s holds a copy already: %w", p.Node, store.ErrConflict)
		case h.Node == p.Node || h.LostAt != nil:
		case h.VerifiedAt != nil && slices.Contains(p.Live, h.Node):
			taken++
		case h.VerifiedAt == nil && h.ClaimUntil != nil && h.ClaimUntil.After(now):
			taken++
		}
	}
	if taken >= p.Target {
		return fmt.Errorf("its %d copies are made or being made: %w", p.Target, store.ErrConflict)
	}
	_, err = s.exec(ctx, tx, `INSERT INTO output_holders (run_id, attempt, name, node, claim_until) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, attempt, name, node) DO UPDATE SET verified_at = NULL, claim_until = excluded.claim_until, lost_at = NULL`,
		p.Ref.RunID, p.Ref.Attempt, p.Ref.Name, p.Node, micros(now.Add(p.TTL)))
	return err
}

// OutputHolderAddBatch implements store.Store: every record in one transaction; an
// output gone (expired meanwhile) is an ErrNotFound of its own item.
func (s *DB) OutputHolderAddBatch(ctx context.Context, ps []store.OutputHolderAddParams) ([]error, error) {
	errs := make([]error, len(ps))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		for i, p := range ps {
			errs[i] = nil
			err := s.holderAdd(ctx, tx, now, p)
			switch {
			case errors.Is(err, store.ErrNotFound):
				errs[i] = fmt.Errorf("record node %s as holder of output %s: %w", p.Node, p.Ref, err)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record %d copies of outputs: %w", len(ps), err)
	}
	return errs, nil
}

func (s *DB) holderAdd(ctx context.Context, tx *sql.Tx, now time.Time, p store.OutputHolderAddParams) error {
	holders, err := s.lockOutput(ctx, tx, p.Ref)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO output_holders (run_id, attempt, name, node, verified_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, attempt, name, node) DO UPDATE SET verified_at = excluded.verified_at, claim_until = NULL, lost_at = NULL`,
		p.Ref.RunID, p.Ref.Attempt, p.Ref.Name, p.Node, micros(now)); err != nil {
		return err
	}
	have := 1
	for _, h := range holders {
		if h.Node != p.Node && h.Verified() && slices.Contains(p.Live, h.Node) {
			have++
		}
	}
	if have >= p.Target {
		_, err = s.exec(ctx, tx, `UPDATE outputs SET needs_copies = 0 WHERE run_id = ? AND attempt = ? AND name = ?`,
			p.Ref.RunID, p.Ref.Attempt, p.Ref.Name)
	}
	return err
}

// OutputHolderDrop implements store.Store.
func (s *DB) OutputHolderDrop(ctx context.Context, ref store.OutputRef, node string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		k, err := s.exec(ctx, tx, `DELETE FROM output_holders WHERE run_id = ? AND attempt = ? AND name = ? AND node = ?`,
			ref.RunID, ref.Attempt, ref.Name, node)
		if err != nil || k == 0 {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE outputs SET needs_copies = 1 WHERE run_id = ? AND attempt = ? AND name = ?`,
			ref.RunID, ref.Attempt, ref.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("drop node %s as holder of output %s: %w", node, ref, err)
	}
	return nil
}

// OutputSettle implements store.Store.
func (s *DB) OutputSettle(ctx context.Context, refs []store.OutputRef) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, ref := range refs {
			if _, err := s.exec(ctx, tx, `UPDATE outputs SET needs_copies = 0 WHERE run_id = ? AND attempt = ? AND name = ?`,
				ref.RunID, ref.Attempt, ref.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settle %d outputs: %w", len(refs), err)
	}
	return nil
}

// OutputExpire implements store.Store.
func (s *DB) OutputExpire(ctx context.Context, p store.OutputExpireParams) ([]store.Output, error) {
	var out []store.Output
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		ended := `(SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?)`
		if out, err = s.outputs(ctx, tx, `SELECT `+outputColumns+` FROM outputs o WHERE o.run_id IN `+ended, micros(p.Before)); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		if _, err = s.exec(ctx, tx, `DELETE FROM output_holders WHERE run_id IN `+ended, micros(p.Before)); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM outputs WHERE run_id IN `+ended, micros(p.Before))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expire outputs: %w", err)
	}
	return out, nil
}

// loseCopies marks the copies a lost node held as lost, drops its claims, and says which
// of those outputs are now under-replicated or have no live holder left.
func (s *DB) loseCopies(ctx context.Context, tx *sql.Tx, p store.NodeLoseParams, now time.Time, res *store.NodeLoseResult) error {
	lostAt := micros(now)
	if _, err := s.exec(ctx, tx, `DELETE FROM output_holders WHERE node = ? AND verified_at IS NULL`, p.Node); err != nil {
		return fmt.Errorf("drop the copy claims of node %s: %w", p.Node, err)
	}
	k, err := s.exec(ctx, tx, `UPDATE output_holders SET lost_at = ? WHERE node = ? AND lost_at IS NULL`, lostAt, p.Node)
	if err != nil || k == 0 {
		return err
	}
	if _, err := s.exec(ctx, tx, `UPDATE outputs SET needs_copies = 1 WHERE EXISTS (SELECT 1 FROM output_holders h
		WHERE h.run_id = outputs.run_id AND h.attempt = outputs.attempt AND h.name = outputs.name AND h.node = ? AND h.lost_at = ?)`,
		p.Node, lostAt); err != nil {
		return fmt.Errorf("mark the outputs of node %s as needing copies: %w", p.Node, err)
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT l.run_id, l.attempt, l.name, o.copies,
		(SELECT COUNT(*) FROM output_holders h JOIN nodes n ON n.id = h.node WHERE h.run_id = l.run_id AND h.attempt = l.attempt
			AND h.name = l.name AND h.verified_at IS NOT NULL AND h.lost_at IS NULL AND n.mode NOT IN ('lost', 'stopped'))
		FROM output_holders l JOIN outputs o ON o.run_id = l.run_id AND o.attempt = l.attempt AND o.name = l.name
		WHERE l.node = ? AND l.lost_at = ? ORDER BY l.run_id, l.attempt, l.name`), p.Node, lostAt)
	if err != nil {
		return fmt.Errorf("count the copies left of node %s's outputs: %w", p.Node, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ref store.OutputRef
		var copies, left int
		if err := rows.Scan(&ref.RunID, &ref.Attempt, &ref.Name, &copies, &left); err != nil {
			return fmt.Errorf("scan output: %w", err)
		}
		want := copies
		if want == 0 {
			want = p.OutputCopies
		}
		if want == 0 {
			want = 2
		}
		switch {
		case left == 0:
			res.OutputsLost = append(res.OutputsLost, ref)
		case left < want:
			res.Underreplicated = append(res.Underreplicated, ref)
		}
	}
	return rows.Err()
}

// OutputPendingCount implements store.Store, from the partial index of outputs that
// need copies.
func (s *DB) OutputPendingCount(ctx context.Context) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM outputs WHERE needs_copies = 1`)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outputs that need copies: %w", err)
	}
	return n, nil
}
