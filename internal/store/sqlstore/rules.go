package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// Event rules, the notifier's cursor and repeat windows, and notifications.

const ruleColumns = `name, spec, since_event, created_at, updated_at`

func scanRule(r scanner) (store.Rule, error) {
	var ru store.Rule
	var spec string
	var created, updated int64
	if err := r.Scan(&ru.Name, &spec, &ru.SinceEvent, &created, &updated); err != nil {
		return ru, err
	}
	ru.Spec, ru.CreatedAt, ru.UpdatedAt = []byte(spec), instant(created), instant(updated)
	return ru, nil
}

// RuleApply implements store.Store.
func (s *DB) RuleApply(ctx context.Context, p store.RuleApplyParams) ([]store.RuleApplyResult, error) {
	var out []store.RuleApplyResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.configWritable(ctx, tx); err != nil {
			return err
		}
		var err error
		if out, err = s.ruleApplyTx(ctx, tx, p); err != nil {
			return err
		}
		cs := make([]changeNew, 0, len(out))
		for _, r := range out {
			cs = append(cs, changeNew{entity: store.EntityRule, key: r.Rule.Name, op: store.OpApply, def: store.ChangeRule{Spec: r.Rule.Spec}})
		}
		return s.changesAppend(ctx, tx, cs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ruleApplyTx applies rules in tx; the caller appends their changes.
func (s *DB) ruleApplyTx(ctx context.Context, tx *sql.Tx, p store.RuleApplyParams) ([]store.RuleApplyResult, error) {
	var out []store.RuleApplyResult
	err := func() error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&last); err != nil {
			return fmt.Errorf("read the last event: %w", err)
		}
		now := micros(p.Now)
		for _, d := range p.Rules {
			k, err := s.exec(ctx, tx, `UPDATE rules SET spec = ?, updated_at = ? WHERE name = ?`, string(d.Spec), now, d.Name)
			if err != nil {
				return fmt.Errorf("apply rule %s: %w", d.Name, err)
			}
			if k == 0 {
				if _, err := s.exec(ctx, tx, `INSERT INTO rules (name, spec, since_event, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
					d.Name, string(d.Spec), last, now, now); err != nil {
					return fmt.Errorf("apply rule %s: %w", d.Name, err)
				}
			}
			r, err := scanRule(tx.QueryRowContext(ctx, s.q(`SELECT `+ruleColumns+` FROM rules WHERE name = ?`), d.Name))
			if err != nil {
				return fmt.Errorf("apply rule %s: %w", d.Name, err)
			}
			out = append(out, store.RuleApplyResult{Rule: r, Created: k == 0})
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RuleGet implements store.Store.
func (s *DB) RuleGet(ctx context.Context, name string) (store.Rule, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	r, err := scanRule(s.db.QueryRowContext(ctx, s.q(`SELECT `+ruleColumns+` FROM rules WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("rule", name)
	}
	if err != nil {
		return r, fmt.Errorf("get rule %s: %w", name, err)
	}
	return r, nil
}

// RuleList implements store.Store.
func (s *DB) RuleList(ctx context.Context) ([]store.Rule, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return s.ruleListTx(ctx, s.db)
}

func (s *DB) ruleListTx(ctx context.Context, qr querier) ([]store.Rule, error) {
	rows, err := qr.QueryContext(ctx, `SELECT `+ruleColumns+` FROM rules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	defer rows.Close()
	var out []store.Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RuleDelete implements store.Store. The rule's repeat windows go with it.
func (s *DB) RuleDelete(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.configWritable(ctx, tx); err != nil {
			return err
		}
		if err := s.ruleDeleteTx(ctx, tx, name); err != nil {
			return err
		}
		return s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityRule, key: name, op: store.OpDelete}})
	})
}

// ruleDeleteTx deletes a rule in tx; the caller appends the change.
func (s *DB) ruleDeleteTx(ctx context.Context, tx *sql.Tx, name string) error {
	{
		k, err := s.exec(ctx, tx, `DELETE FROM rules WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete rule %s: %w", name, err)
		}
		if k == 0 {
			return notFound("rule", name)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM notify_repeats WHERE rule = ?`, name); err != nil {
			return fmt.Errorf("delete rule %s: %w", name, err)
		}
		return nil
	}
}

// NotifyState implements store.Store.
func (s *DB) NotifyState(ctx context.Context) (store.NotifyState, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var st store.NotifyState
	if err := s.db.QueryRowContext(ctx, `SELECT event_id FROM notify_cursor WHERE id = 1`).Scan(&st.Cursor); err != nil {
		return st, fmt.Errorf("read the notifier's cursor: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT rule, key, since, until, suppressed, first_event, last_event FROM notify_repeats ORDER BY rule, key`)
	if err != nil {
		return st, fmt.Errorf("read repeat windows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.Repeat
		var since, until int64
		if err := rows.Scan(&r.Rule, &r.Key, &since, &until, &r.Suppressed, &r.FirstEvent, &r.LastEvent); err != nil {
			return st, fmt.Errorf("read repeat windows: %w", err)
		}
		r.Since, r.Until = instant(since), instant(until)
		st.Repeats = append(st.Repeats, r)
	}
	return st, rows.Err()
}

// NotifyAdvance implements store.Store.
func (s *DB) NotifyAdvance(ctx context.Context, p store.NotifyAdvanceParams) ([]store.Notification, error) {
	var out []store.Notification
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		if err := s.checkEpoch(ctx, tx, p.Epoch); err != nil {
			return err
		}
		k, err := s.exec(ctx, tx, `UPDATE notify_cursor SET event_id = ?, updated_at = ? WHERE id = 1 AND event_id = ?`,
			p.To, micros(p.Now), p.From)
		if err != nil {
			return fmt.Errorf("move the notifier's cursor: %w", err)
		}
		if k == 0 {
			return fmt.Errorf("the notifier's cursor is not at event %d: %w", p.From, store.ErrConflict)
		}
		now := micros(p.Now)
		made := false
		for _, n := range p.Notices {
			var id int64
			err := tx.QueryRowContext(ctx, s.q(`INSERT INTO notifications (rule, event_id, event_type, kind, key, state, subject, body, count,
				epoch, node, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (rule, event_id, kind) DO NOTHING RETURNING id`),
				n.Rule, n.EventID, n.EventType, n.Kind, n.Key, n.State, n.Subject, n.Body, max(n.Count, 1), p.Epoch, p.Node, now).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue // recorded already
			}
			if err != nil {
				return fmt.Errorf("record notification of rule %s for event %d: %w", n.Rule, n.EventID, err)
			}
			out = append(out, store.Notification{ID: id, Rule: n.Rule, EventID: n.EventID, EventType: n.EventType, Kind: n.Kind,
				Key: n.Key, State: n.State, Subject: n.Subject, Body: n.Body, Count: max(n.Count, 1), Epoch: p.Epoch, Node: p.Node,
				CreatedAt: instant(now)})
			if n.State != store.NotificationSent {
				continue
			}
			for i, ch := range n.Channels {
				spec, err := json.Marshal(ch)
				if err != nil {
					return fmt.Errorf("encode channel %d of rule %s: %w", i, n.Rule, err)
				}
				if _, err := s.exec(ctx, tx, `INSERT INTO deliveries (run_id, notification, job, entry, channel, spec, holder, state, next_at,
					created_at, updated_at) VALUES (0, ?, '', ?, ?, ?, '', 'pending', ?, ?, ?)`,
					id, i, ch.Channel(), string(spec), now, now, now); err != nil {
					return fmt.Errorf("create the delivery records of notification %d: %w", id, err)
				}
				made = true
			}
		}
		for _, r := range p.Repeats {
			if r.Until.IsZero() {
				_, err = s.exec(ctx, tx, `DELETE FROM notify_repeats WHERE rule = ? AND key = ?`, r.Rule, r.Key)
			} else {
				_, err = s.exec(ctx, tx, `INSERT INTO notify_repeats (rule, key, since, until, suppressed, first_event, last_event)
					VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule, key) DO UPDATE SET since = excluded.since, until = excluded.until,
					suppressed = excluded.suppressed, first_event = excluded.first_event, last_event = excluded.last_event`,
					r.Rule, r.Key, micros(r.Since), micros(r.Until), r.Suppressed, r.FirstEvent, r.LastEvent)
			}
			if err != nil {
				return fmt.Errorf("record the repeat window of rule %s, key %q: %w", r.Rule, r.Key, err)
			}
		}
		if made {
			return s.notify(ctx, tx, store.TopicDeliveries, "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("advance the notifier to event %d: %w", p.To, err)
	}
	return out, nil
}

const notificationColumns = `id, rule, event_id, event_type, kind, key, state, subject, body, count, epoch, node, created_at`

func scanNotification(r scanner) (store.Notification, error) {
	var n store.Notification
	var created int64
	err := r.Scan(&n.ID, &n.Rule, &n.EventID, &n.EventType, &n.Kind, &n.Key, &n.State, &n.Subject, &n.Body, &n.Count,
		&n.Epoch, &n.Node, &created)
	n.CreatedAt = instant(created)
	return n, err
}

// NotificationList implements store.Store.
func (s *DB) NotificationList(ctx context.Context, p store.NotificationListParams) ([]store.Notification, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var where []string
	var args []any
	if p.Rule != "" {
		where, args = append(where, "rule = ?"), append(args, p.Rule)
	}
	if p.EventID != 0 {
		where, args = append(where, "event_id = ?"), append(args, p.EventID)
	}
	if p.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+" ORDER BY id DESC LIMIT ?"), append(args, cmpOr(p.Limit, 100))...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var out []store.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NotificationGet implements store.Store.
func (s *DB) NotificationGet(ctx context.Context, id int64) (store.Notification, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	n, err := scanNotification(s.db.QueryRowContext(ctx, s.q(`SELECT `+notificationColumns+` FROM notifications WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, notFound("notification", id)
	}
	if err != nil {
		return n, fmt.Errorf("get notification %d: %w", id, err)
	}
	n.Deliveries, err = s.deliveries(ctx, s.db, `SELECT `+deliveryColumns+` FROM deliveries WHERE notification = ? ORDER BY entry`, id)
	return n, err
}
