package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// EventAppend implements store.Store.
func (s *DB) EventAppend(ctx context.Context, p store.EventAppendParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.eventsInsert(ctx, tx, []store.EventAppendParams{p})
	})
	if err != nil {
		return fmt.Errorf("append event %s: %w", p.Type, err)
	}
	return nil
}

// eventsInsert records events in tx, as the last writes of a transaction where it can
// be: on PostgreSQL it takes the events lock (Dialect.EventLock), held to commit, so
// ids commit in the order they were taken. Events with a Dedup already recorded are
// dropped.
func (s *DB) eventsInsert(ctx context.Context, tx *sql.Tx, evs []store.EventAppendParams) error {
	if len(evs) == 0 {
		return nil
	}
	if s.d.EventLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.EventLock); err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
	}
	for chunk := range slices.Chunk(evs, 100) {
		args := make([]any, 0, 6*len(chunk))
		for _, p := range chunk {
			data, err := json.Marshal(p.Data)
			if err != nil {
				return fmt.Errorf("encode event data: %w", err)
			}
			var dedup any
			if p.Dedup != "" {
				dedup = p.Dedup
			}
			args = append(args, p.Type, micros(p.Now), p.Node, p.Message, string(data), dedup)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO events (type, at, node, message, data, dedup) VALUES `+
			rowsOf("(?, ?, ?, ?, ?, ?)", len(chunk))+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	return nil
}

const eventColumns = `id, type, at, node, message, data`

func scanEvent(r scanner) (store.Event, error) {
	var e store.Event
	var at int64
	var data string
	if err := r.Scan(&e.ID, &e.Type, &at, &e.Node, &e.Message, &data); err != nil {
		return e, err
	}
	e.At = instant(at)
	if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
		return e, fmt.Errorf("decode event %d: %w", e.ID, err)
	}
	return e, nil
}

// EventList implements store.Store.
func (s *DB) EventList(ctx context.Context, p store.EventListParams) ([]store.Event, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	var where []string
	var args []any
	if p.Type != "" {
		where, args = append(where, `type = ?`), append(args, p.Type)
	}
	order := ` ORDER BY id DESC LIMIT ?`
	if p.Follow {
		where, args = append(where, `id > ?`), append(args, p.After)
		order = ` ORDER BY id LIMIT ?`
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+order), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventGet implements store.Store.
func (s *DB) EventGet(ctx context.Context, id int64) (store.Event, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	e, err := scanEvent(s.db.QueryRowContext(ctx, s.q(`SELECT `+eventColumns+` FROM events WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, notFound("event", id)
	}
	if err != nil {
		return e, fmt.Errorf("get event %d: %w", id, err)
	}
	return e, nil
}

// LeaseGet implements store.Store. The lease's Now is the repository's clock, read in
// the same statement.
func (s *DB) LeaseGet(ctx context.Context, name string) (store.Lease, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	l := store.Lease{Name: name}
	var exp, now int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT holder, epoch, expires_at, successor, `+s.d.NowSQL+` FROM leases WHERE name = ?`), name).
		Scan(&l.Holder, &l.Epoch, &exp, &l.Successor, &now)
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("lease", name)
	}
	if err != nil {
		return l, fmt.Errorf("get lease %s: %w", name, err)
	}
	l.ExpiresAt, l.Now = instant(exp), instant(now)
	return l, nil
}

func (s *DB) leaseGet(ctx context.Context, qr querier, name string, lock ...string) (store.Lease, error) {
	l := store.Lease{Name: name}
	var exp int64
	q := `SELECT holder, epoch, expires_at, successor FROM leases WHERE name = ?`
	if len(lock) > 0 {
		q += lock[0]
	}
	err := qr.QueryRowContext(ctx, s.q(q), name).Scan(&l.Holder, &l.Epoch, &exp, &l.Successor)
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("lease", name)
	}
	if err != nil {
		return l, fmt.Errorf("get lease %s: %w", name, err)
	}
	l.ExpiresAt = instant(exp)
	return l, nil
}

// LeaseAcquire implements store.Store. The holder changes, and the epoch grows, only when
// the lease is free or expired; a holder re-acquiring its own live lease just extends it.
func (s *DB) LeaseAcquire(ctx context.Context, p store.LeaseAcquireParams) (store.Lease, error) {
	var l store.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		cur, err := s.leaseGet(ctx, tx, p.Name, s.d.ForUpdate)
		exp := micros(now.Add(p.TTL))
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = s.exec(ctx, tx, `INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)`, p.Name, p.Holder, exp)
		case err != nil:
			return err
		case cur.Holder == p.Holder && cur.ExpiresAt.After(now):
			_, err = s.exec(ctx, tx, `UPDATE leases SET expires_at = ? WHERE name = ?`, exp, p.Name)
		case cur.ExpiresAt.After(now) && (p.TakeFrom == "" || cur.Holder != p.TakeFrom):
			l = cur
			return fmt.Errorf("lease %s held by %s (epoch %d): %w", p.Name, cur.Holder, cur.Epoch, store.ErrLeaseHeld)
		case cur.Successor != "" && cur.Successor != p.Node && now.Before(cur.ExpiresAt.Add(p.TTL)):
			l = cur
			return fmt.Errorf("lease %s is handed over to %s: %w", p.Name, cur.Successor, store.ErrLeaseHeld)
		default:
			_, err = s.exec(ctx, tx, `UPDATE leases SET holder = ?, epoch = epoch + 1, expires_at = ?, successor = '' WHERE name = ?`, p.Holder, exp, p.Name)
		}
		if err != nil {
			return fmt.Errorf("take lease %s: %w", p.Name, err)
		}
		l, err = s.leaseGet(ctx, tx, p.Name)
		return err
	})
	return l, err
}

// LeaseRenew implements store.Store.
func (s *DB) LeaseRenew(ctx context.Context, p store.LeaseRenewParams) (store.Lease, error) {
	var l store.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		k, err := s.exec(ctx, tx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?`,
			micros(now.Add(p.TTL)), p.Name, p.Holder, p.Epoch)
		if err != nil {
			return fmt.Errorf("renew lease %s: %w", p.Name, err)
		}
		if k == 0 {
			return fmt.Errorf("renew lease %s at epoch %d: %w", p.Name, p.Epoch, store.ErrFenced)
		}
		l, err = s.leaseGet(ctx, tx, p.Name)
		return err
	})
	return l, err
}

// LeaseResign implements store.Store.
func (s *DB) LeaseResign(ctx context.Context, p store.LeaseResignParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.now(ctx, tx)
		if err != nil {
			return err
		}
		k, err := s.exec(ctx, tx, `UPDATE leases SET expires_at = ?, successor = ? WHERE name = ? AND holder = ? AND epoch = ?`,
			micros(now), p.Successor, p.Name, p.Holder, p.Epoch)
		if err != nil {
			return fmt.Errorf("resign lease %s: %w", p.Name, err)
		}
		if k == 0 {
			return nil
		}
		return s.notify(ctx, tx, TopicLease, p.Holder)
	})
}

// RunCounts implements store.Store.
func (s *DB) RunCounts(ctx context.Context) ([]store.RunCount, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT node, state, COUNT(*) FROM runs WHERE state IN `+activeStates+` GROUP BY node, state ORDER BY node, state`))
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return scanRunCounts(rows, "count runs")
}

// scanRunCounts reads (node, state, count) rows and closes them; what says what the
// query was for, in errors.
func scanRunCounts(rows *sql.Rows, what string) ([]store.RunCount, error) {
	defer rows.Close()
	var out []store.RunCount
	for rows.Next() {
		var c store.RunCount
		var state string
		if err := rows.Scan(&c.Node, &state, &c.Count); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c.State = store.RunState(state)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// RunQueueStats implements store.Store, from the partial index of queued runs.
func (s *DB) RunQueueStats(ctx context.Context) (store.QueueStats, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var n int
	var oldest sql.NullInt64
	var now int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*), MIN(created_at), `+s.d.NowSQL+` FROM runs WHERE state = 'queued'`)).Scan(&n, &oldest, &now)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("read the queue: %w", err)
	}
	st := store.QueueStats{Queued: n, Now: instant(now)}
	if oldest.Valid {
		st.Oldest = instant(oldest.Int64)
	}
	return st, nil
}
