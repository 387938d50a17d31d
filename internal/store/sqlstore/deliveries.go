package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// Delivery records: made in the transaction that ends a run (deliveriesCreate, called
// by every path that gives a run a final state), claimed, finished and retried here.

const deliveryColumns = `id, run_id, notification, job, entry, channel, spec, holder, state, attempts, retry_from, next_at, claim_node,
	claim_token, claim_until, last_error, last_response, created_at, updated_at, delivered_at`

func scanDelivery(r scanner) (store.Delivery, error) {
	var d store.Delivery
	var spec, state string
	var next, created, updated int64
	var until, delivered sql.NullInt64
	if err := r.Scan(&d.ID, &d.RunID, &d.Notification, &d.Job, &d.Entry, &d.Channel, &spec, &d.Holder, &state, &d.Attempts, &d.RetryFrom,
		&next, &d.ClaimNode, &d.ClaimToken, &until, &d.LastError, &d.LastResponse, &created, &updated, &delivered); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(spec), &d.Spec); err != nil {
		return d, fmt.Errorf("decode delivery %d: %w", d.ID, err)
	}
	d.State = store.DeliveryState(state)
	d.NextAt, d.CreatedAt, d.UpdatedAt = instant(next), instant(created), instant(updated)
	d.ClaimUntil, d.DeliveredAt = instantPtr(until), instantPtr(delivered)
	return d, nil
}

func (s *DB) deliveries(ctx context.Context, qr querier, q string, args ...any) ([]store.Delivery, error) {
	rows, err := qr.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// jobDeliveriesSet replaces the [[deliver]] entries kept for the applied jobs: one row
// per entry and run state it is delivered on.
func (s *DB) jobDeliveriesSet(ctx context.Context, tx *sql.Tx, jobs []store.JobApplyResult) error {
	ids := make([]int64, 0, len(jobs))
	type row struct {
		job   int64
		state string
		entry int
		ch    string
		spec  string
	}
	var rows []row
	for _, r := range jobs {
		if !r.Created { // a new job has no rows (JobDelete removes a deleted one's)
			ids = append(ids, r.Job.ID)
		}
		for i, d := range r.Job.Spec.Deliver {
			b, err := json.Marshal(d)
			if err != nil {
				return fmt.Errorf("encode deliver[%d] of %s: %w", i, r.Job.Name, err)
			}
			for _, st := range d.States() {
				rows = append(rows, row{r.Job.ID, st, i, d.Channel(), string(b)})
			}
		}
	}
	for chunk := range slices.Chunk(ids, batchRows) {
		in, args := s.idIn("job_id", chunk)
		if _, err := s.exec(ctx, tx, `DELETE FROM job_deliveries WHERE `+in, args...); err != nil {
			return fmt.Errorf("replace deliver entries: %w", err)
		}
	}
	for chunk := range slices.Chunk(rows, batchRows) {
		args := make([]any, 0, 5*len(chunk))
		for _, r := range chunk {
			args = append(args, r.job, r.state, r.entry, r.ch, r.spec)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO job_deliveries (job_id, state, entry, channel, spec) VALUES `+
			rowsOf("(?, ?, ?, ?, ?)", len(chunk)), args...); err != nil {
			return fmt.Errorf("record deliver entries: %w", err)
		}
	}
	return nil
}

// jobDeliveriesDelete forgets a deleted job's entries (its records stay as history).
func (s *DB) jobDeliveriesDelete(ctx context.Context, tx *sql.Tx, jobID int64) error {
	if _, err := s.exec(ctx, tx, `DELETE FROM job_deliveries WHERE job_id = ?`, jobID); err != nil {
		return fmt.Errorf("delete deliver entries: %w", err)
	}
	return nil
}

// deliveriesCreate makes the delivery records of the runs with the given ids that are
// now final: one per entry of the run's job delivered on the run's state, due when the
// run finished. A run given twice, or ended again, keeps the records it has. Runs of
// jobs without entries cost the join nothing but the statement.
//
// Every path that gives a run its final state comes here, so the run's event
// (runEvents) is written here too, in the same transaction.
func (s *DB) deliveriesCreate(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if err := s.runEvents(ctx, tx, ids); err != nil {
		return err
	}
	var made int64
	for chunk := range slices.Chunk(ids, batchRows) {
		in, args := s.idIn("r.id", chunk)
		k, err := s.exec(ctx, tx, `INSERT INTO deliveries (run_id, job, entry, channel, spec, holder, state, next_at, created_at, updated_at)
			SELECT r.id, r.job, d.entry, d.channel, d.spec, r.node, 'pending', r.finished_at, r.finished_at, r.finished_at
			FROM runs r JOIN job_deliveries d ON d.job_id = r.job_id AND d.state = r.state
			WHERE `+in+` AND r.finished_at IS NOT NULL
			ON CONFLICT (run_id, notification, entry) DO NOTHING`, args...)
		if err != nil {
			return fmt.Errorf("create delivery records: %w", err)
		}
		made += k
	}
	if made > 0 {
		return s.notify(ctx, tx, store.TopicDeliveries, "")
	}
	return nil
}

// deliveriesNodeLost releases the claims of a node declared lost: another node sends
// them at once instead of after their expiry.
func (s *DB) deliveriesNodeLost(ctx context.Context, tx *sql.Tx, node string) error {
	k, err := s.exec(ctx, tx, `UPDATE deliveries SET state = 'pending', claim_token = '', claim_until = NULL,
		last_error = ? WHERE state = 'sending' AND claim_node = ?`, fmt.Sprintf("node %s was lost while sending it", node), node)
	if err != nil {
		return fmt.Errorf("release the deliveries node %s claimed: %w", node, err)
	}
	if k > 0 {
		return s.notify(ctx, tx, store.TopicDeliveries, "")
	}
	return nil
}

// DeliveryList implements store.Store.
func (s *DB) DeliveryList(ctx context.Context, p store.DeliveryListParams) ([]store.Delivery, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var where []string
	var args []any
	if p.RunID != 0 {
		where, args = append(where, "run_id = ?"), append(args, p.RunID)
	}
	if p.Job != "" {
		where, args = append(where, "job = ?"), append(args, p.Job)
	}
	if len(p.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(p.States))+")")
		for _, st := range p.States {
			args = append(args, string(st))
		}
	}
	if p.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT ` + deliveryColumns + ` FROM deliveries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := s.deliveries(ctx, s.db, q+" ORDER BY id DESC LIMIT ?", append(args, cmpOr(p.Limit, 100))...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func (s *DB) deliveryGet(ctx context.Context, qr querier, id int64) (store.Delivery, error) {
	d, err := scanDelivery(qr.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+` FROM deliveries WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, notFound("delivery", id)
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return d, nil
}

// DeliveryGet implements store.Store.
func (s *DB) DeliveryGet(ctx context.Context, id int64) (store.Delivery, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	d, err := s.deliveryGet(ctx, s.db, id)
	if err != nil {
		return d, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT n, node, started_at, finished_at, outcome, response, error
		FROM delivery_attempts WHERE delivery_id = ? ORDER BY n`), id)
	if err != nil {
		return d, fmt.Errorf("list attempts of delivery %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a store.DeliveryAttempt
		var started, finished int64
		var outcome string
		if err := rows.Scan(&a.N, &a.Node, &started, &finished, &outcome, &a.Response, &a.Error); err != nil {
			return d, fmt.Errorf("list attempts of delivery %d: %w", id, err)
		}
		a.StartedAt, a.FinishedAt, a.Outcome = instant(started), instant(finished), store.DeliveryState(outcome)
		d.History = append(d.History, a)
	}
	return d, rows.Err()
}

// DeliveryClaim implements store.Store. Expired claims first, then due pending records in
// the order they fell due, each found by its own index walk that stops at the limit (one
// statement with both in an OR read every due record and sorted them, per claim: a
// backlog of thousands made each claim cost thousands of rows); then one statement
// claims them. On PostgreSQL rows another claimer has locked are skipped, not waited for.
func (s *DB) DeliveryClaim(ctx context.Context, p store.DeliveryClaimParams) ([]store.Delivery, error) {
	var out []store.Delivery
	lock := ""
	if s.d.ForUpdate != "" {
		lock = " " + s.d.ForUpdate + " SKIP LOCKED"
	}
	now, limit := micros(p.Now), cmpOr(p.Limit, 10)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Of those this node may take now: its own, ownerless ones, those due for
		// Handoff already, and those of a down holder.
		mayTake := ` AND (holder = ? OR holder = '' OR next_at <= ? OR holder IN (SELECT id FROM nodes WHERE mode IN ('lost', 'stopped')))`
		handoff := micros(p.Now.Add(-p.Handoff))
		ids, err := s.ids(ctx, tx, `SELECT id FROM deliveries WHERE state = 'sending' AND claim_until <= ?`+mayTake+
			` ORDER BY claim_until LIMIT ?`+lock, now, p.Node, handoff, limit)
		if err != nil {
			return err
		}
		if len(ids) < limit {
			due, err := s.ids(ctx, tx, `SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= ?`+mayTake+
				` ORDER BY next_at, id LIMIT ?`+lock, now, p.Node, handoff, limit-len(ids))
			if err != nil {
				return err
			}
			ids = append(ids, due...)
		}
		if len(ids) == 0 {
			return nil
		}
		args := []any{p.Node, p.Token, micros(p.Until), now}
		for _, id := range ids {
			args = append(args, id)
		}
		out, err = s.deliveries(ctx, tx, `UPDATE deliveries SET state = 'sending', claim_node = ?, claim_token = ?, claim_until = ?, updated_at = ?
			WHERE id IN (`+placeholders(len(ids))+`) RETURNING `+deliveryColumns, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries for %s: %w", p.Node, err)
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// DeliveryFinishBatch implements store.Store.
func (s *DB) DeliveryFinishBatch(ctx context.Context, ps []store.DeliveryFinishParams) ([]store.DeliveryFinishResult, error) {
	out := make([]store.DeliveryFinishResult, len(ps))
	for i, p := range ps {
		if !p.State.Valid() || p.State == store.DeliverySending {
			out[i].Err = fmt.Errorf("finish delivery %d: state %q is not an outcome", p.ID, p.State)
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, p := range ps {
			if out[i].Err != nil {
				continue
			}
			d, err := s.deliveryFinish(ctx, tx, p)
			if errors.Is(err, store.ErrStale) {
				out[i] = store.DeliveryFinishResult{Delivery: d, Err: fmt.Errorf("finish delivery %d: %w", p.ID, err)}
				continue
			}
			if err != nil {
				return err
			}
			out[i].Delivery = d
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d deliveries: %w", len(ps), err)
	}
	return out, nil
}

func (s *DB) deliveryFinish(ctx context.Context, tx *sql.Tx, p store.DeliveryFinishParams) (store.Delivery, error) {
	var delivered any
	if p.State == store.DeliveryDelivered {
		delivered = micros(p.Now)
	}
	next := micros(p.NextAt)
	if p.NextAt.IsZero() {
		next = micros(p.Now)
	}
	k, err := s.exec(ctx, tx, `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_at = ?, claim_token = '', claim_until = NULL,
		last_error = ?, last_response = ?, updated_at = ?, delivered_at = ? WHERE id = ? AND claim_token = ? AND state = 'sending'`,
		string(p.State), next, p.Error, p.Response, micros(p.Now), delivered, p.ID, p.Token)
	if err != nil {
		return store.Delivery{}, fmt.Errorf("finish delivery %d: %w", p.ID, err)
	}
	d, err := s.deliveryGet(ctx, tx, p.ID)
	if err != nil {
		return d, err
	}
	if k == 0 {
		return d, fmt.Errorf("delivery %d is %s, claimed by %q: %w", p.ID, d.State, d.ClaimNode, store.ErrStale)
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO delivery_attempts (delivery_id, n, node, started_at, finished_at, outcome, response, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, d.Attempts, p.Node, micros(p.StartedAt), micros(p.Now), string(p.State), p.Response, p.Error); err != nil {
		return d, fmt.Errorf("record attempt %d of delivery %d: %w", d.Attempts, p.ID, err)
	}
	typ := ""
	switch p.State {
	case store.DeliveryFailed:
		typ = store.EventDeliveryFailed
	case store.DeliveryDisabled:
		typ = store.EventDeliveryDisabled
	default:
		return d, nil
	}
	data := map[string]any{"delivery": d.ID, "key": d.Key(), "run": d.RunID, "job": d.Job, "entry": d.Entry,
		"channel": d.Channel, "target": d.Spec.Target(), "attempts": d.Attempts, "error": p.Error, "response": p.Response,
		"notification": d.Notification, "rule": ""}
	msg := fmt.Sprintf("delivery %d of run %d (%s, %s %s) %s after %d attempts: %s", d.ID, d.RunID, d.Job, d.Channel,
		d.Spec.Target(), p.State, d.Attempts, cmpOrString(p.Error, p.Response))
	if d.Notification != 0 {
		// The rule is named so that it is not notified of its own failures (notify).
		var rule string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT rule FROM notifications WHERE id = ?`), d.Notification).Scan(&rule); err != nil {
			return d, fmt.Errorf("read notification %d: %w", d.Notification, err)
		}
		data["rule"] = rule
		msg = fmt.Sprintf("delivery %d of notification %d (rule %s, %s %s) %s after %d attempts: %s", d.ID, d.Notification, rule,
			d.Channel, d.Spec.Target(), p.State, d.Attempts, cmpOrString(p.Error, p.Response))
	}
	return d, s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: typ, Now: p.Now, Node: p.Node, Message: msg, Data: data}})
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// DeliveryRetry implements store.Store.
func (s *DB) DeliveryRetry(ctx context.Context, p store.DeliveryRetryParams) (store.Delivery, error) {
	var d store.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		k, err := s.exec(ctx, tx, `UPDATE deliveries SET state = 'pending', next_at = ?, retry_from = attempts, updated_at = ?, last_error = ?
			WHERE id = ? AND state IN ('failed', 'disabled')`, micros(p.Now), micros(p.Now), "retried by "+cmpOrString(p.By, "an operator"), p.ID)
		if err != nil {
			return err
		}
		if d, err = s.deliveryGet(ctx, tx, p.ID); err != nil {
			return err
		}
		if k == 0 {
			return fmt.Errorf("delivery %d is %s, not failed or disabled: %w", p.ID, d.State, store.ErrConflict)
		}
		if p.Audit != nil {
			if err := s.auditEvent(ctx, tx, "delivery.retried", fmt.Sprintf("delivery %d (%s) retried", d.ID, d.Key()), *p.Audit,
				map[string]any{"delivery": d.ID, "key": d.Key(), "run": d.RunID, "job": d.Job, "channel": d.Channel}); err != nil {
				return err
			}
		}
		return s.notify(ctx, tx, store.TopicDeliveries, "")
	})
	if err != nil {
		return d, fmt.Errorf("retry delivery %d: %w", p.ID, err)
	}
	return d, nil
}
