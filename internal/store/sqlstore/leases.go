// Leases: named, fenced leases judged by the repository's clock.

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/internal/store"
)

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
		if l, err = s.leaseGet(ctx, tx, p.Name); err != nil || p.Event == nil {
			return err
		}
		holds, err := s.holdList(ctx, tx)
		if err != nil {
			return err
		}
		if cur.Holder == "" {
			cur = store.Lease{Name: p.Name}
		}
		ev := p.Event(l, cur, holds)
		if ev.Now.IsZero() {
			ev.Now = now
		}
		return s.eventsInsert(ctx, tx, []store.EventAppendParams{ev})
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
			return fmt.Errorf("resign lease %s at epoch %d: %w", p.Name, p.Epoch, store.ErrFenced)
		}
		if err := s.eventsInsert(ctx, tx, p.Events); err != nil {
			return err
		}
		return s.notify(ctx, tx, TopicLease, p.Holder)
	})
}
