// Events: the ordered event log (ids commit in order; see eventsInsert).

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

const eventColumns = `id, type, at, node, message, data`
