// Package sqlstore implements store.Store over database/sql for every SQL engine tandem
// supports. The engines differ only in what a Dialect describes (placeholders, locking
// clauses, how a unique violation looks); the queries, and so the behaviour, are shared.
//
// Times are stored as INTEGER microseconds since the Unix epoch (UTC) on every engine:
// unambiguous, ordered, and the same on both sides of the conformance suite.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Dialect is what differs between engines.
type Dialect struct {
	Name string
	// Numbered placeholders ($1, $2 …) instead of ?.
	Numbered bool
	// ForShare is appended to the lease read that fences a transaction, so a concurrent
	// change of holder waits until the fenced write commits ("" where the engine
	// serialises writers anyway).
	ForShare string
	// ForKeyShare is appended to the read of a node's mode that an assignment depends on:
	// a lock only a change of mode that closes the node (which locks the row for update)
	// waits for, not an ordinary heartbeat ("" where writers are serialised).
	ForKeyShare string
	// ForUpdate is appended to reads a transaction is about to change on the strength of
	// what it read ("" where writers are serialised).
	ForUpdate string
	// NowSQL is an expression for the database's clock in microseconds since the epoch.
	// Leases and heartbeats are judged by it, never by a caller's clock.
	NowSQL string
	// Notify, if set, publishes a wake-up to other nodes inside a transaction (delivered
	// when it commits).
	Notify func(ctx context.Context, tx *sql.Tx, topic, payload string) error
	// OneWriter says the engine lets one transaction write at a time (SQLite). The
	// writing transactions of this process then queue for it in order, here, instead
	// of in the engine's busy wait, which polls with sleeps of up to 100ms; other
	// processes still meet them there.
	OneWriter bool
	// EventLock, if set, is run before inserting events and holds a lock to the end of
	// the transaction, so that event ids commit in the order they are taken ("" where
	// writers are serialised, which gives that already).
	EventLock string
	// ArrayParams says a parameter may be an array (PostgreSQL): many rows then travel as
	// one array per column instead of one parameter per value.
	ArrayParams bool
}

// CallTimeoutDefault bounds every repository call whose context has no earlier deadline,
// so a database that went away cannot hang a node.
const CallTimeoutDefault = 10 * time.Second

// Wake-up topics, as in package store.
const (
	TopicRuns     = store.TopicRuns
	TopicAssigned = store.TopicAssigned
	TopicLease    = store.TopicLease
	TopicConfig   = store.TopicConfig
)

// DB is a Store over one database handle.
type DB struct {
	db *sql.DB
	d  Dialect
	// writer is held by the writing transaction in progress when d.OneWriter.
	writer chan struct{}
}

// New returns a Store over db, which must already hold the current schema.
func New(db *sql.DB, d Dialect) *DB { return &DB{db: db, d: d, writer: make(chan struct{}, 1)} }

// SQL returns the underlying handle (tests and engine adapters).
func (s *DB) SQL() *sql.DB { return s.db }

// Close closes the database handle.
func (s *DB) Close() error { return s.db.Close() }

// q rewrites ? placeholders for engines that number them.
func (s *DB) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// bound gives ctx the call deadline unless it has an earlier one.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < CallTimeoutDefault {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, CallTimeoutDefault)
}

// notify publishes a wake-up where the engine supports it.
func (s *DB) notify(ctx context.Context, tx *sql.Tx, topic, payload string) error {
	if s.d.Notify == nil {
		return nil
	}
	if err := s.d.Notify(ctx, tx, topic, payload); err != nil {
		return fmt.Errorf("notify %s: %w", topic, err)
	}
	return nil
}

// now is the time leases and heartbeats are judged by: the database's clock. The
// caller's is ignored, so a node whose clock is off cannot take or keep a lease wrongly.
func (s *DB) now(ctx context.Context, tx *sql.Tx) (time.Time, error) {
	var us int64
	if err := tx.QueryRowContext(ctx, `SELECT `+s.d.NowSQL).Scan(&us); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return instant(us), nil
}

// tx runs fn in one writing transaction (BEGIN IMMEDIATE on SQLite through the DSN).
func (s *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if s.d.OneWriter {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return fmt.Errorf("begin transaction: wait for this process's writer: %w", ctx.Err())
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *DB) exec(ctx context.Context, qr querier, query string, args ...any) (int64, error) {
	res, err := qr.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// bumpConfigVersion marks a change the schedulers must reload.
func (s *DB) bumpConfigVersion(ctx context.Context, tx *sql.Tx) error {
	if _, err := s.exec(ctx, tx, `UPDATE meta SET value = value + 1 WHERE key = 'config_version'`); err != nil {
		return fmt.Errorf("bump config version: %w", err)
	}
	return s.notify(ctx, tx, TopicConfig, "")
}

// ConfigVersion implements store.Store.
func (s *DB) ConfigVersion(ctx context.Context) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var v int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM meta WHERE key = 'config_version'`)).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read config version: %w", err)
	}
	return v, nil
}

// checkEpoch fences a role-dependent write: it fails with ErrFenced unless epoch is the
// primary lease's current epoch. Epoch 0 skips the check.
func (s *DB) checkEpoch(ctx context.Context, tx *sql.Tx, epoch int64) error {
	return s.checkLeaseEpoch(ctx, tx, primaryLease, epoch)
}

// checkLeaseEpoch fences a write by the epoch of the named lease (a scheduler slot's
// fences the firing of its schedules).
func (s *DB) checkLeaseEpoch(ctx context.Context, tx *sql.Tx, name string, epoch int64) error {
	if epoch == 0 {
		return nil
	}
	var cur int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT epoch FROM leases WHERE name = ?`+s.d.ForShare), name).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return errFenced(epoch, 0)
	}
	if err != nil {
		return fmt.Errorf("read lease epoch: %w", err)
	}
	if cur != epoch {
		return errFenced(epoch, cur)
	}
	return nil
}

// micros stores an instant.
func micros(t time.Time) int64 { return t.UnixMicro() }

// microsPtr stores an optional instant (NULL when nil).
func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// instant reads an instant back as UTC.
func instant(v int64) time.Time { return time.UnixMicro(v).UTC() }

// instantPtr reads an optional instant.
func instantPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := instant(v.Int64)
	return &t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ids runs a query of one integer column and returns its values.
func (s *DB) ids(ctx context.Context, qr querier, query string, args ...any) ([]int64, error) {
	rows, err := qr.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
