package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// repo reads the cluster's repository directly, read-only, so that measuring costs the
// nodes no API work. Queries carry only integers, formatted in, so they read the same on
// both engines.
type repo struct{ db *sql.DB }

func openRepo(engine, db string) (*repo, error) {
	var h *sql.DB
	var err error
	if engine == "postgres" {
		h, err = sql.Open("pgx", db)
	} else {
		h, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(db, "sqlite://")+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	h.SetMaxOpenConns(2)
	return &repo{db: h}, nil
}

func (r *repo) close() { r.db.Close() }

func (r *repo) uninitialised(ctx context.Context) (int, error) {
	var n int
	err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM schedules WHERE next_fire_at IS NULL AND done = 0`).Scan(&n)
	return n, err
}

func (r *repo) lastRunID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	err := r.db.QueryRowContext(ctx, `SELECT max(id) FROM runs`).Scan(&id)
	return id.Int64, err
}

// firstFiredAbove returns when the first run fired under an epoch above old after t0
// was created (zero: none yet). Only runs after id are read.
func (r *repo) firstFiredAbove(ctx context.Context, id, old int64, t0 time.Time) (time.Time, error) {
	var at sql.NullInt64
	err := r.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT min(created_at) FROM runs WHERE id > %d AND epoch > %d AND created_at > %d
		AND trigger = 'schedule'`, id, old, t0.UnixMicro())).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return time.UnixMicro(at.Int64), nil
}

// firstFiredInSlot returns when the first run after id of a schedule in slot (id mod
// slots) created after t0 was created (zero: none yet).
func (r *repo) firstFiredInSlot(ctx context.Context, id int64, slots, slot int, t0 time.Time) (time.Time, error) {
	var at sql.NullInt64
	err := r.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT min(created_at) FROM runs WHERE id > %d AND trigger = 'schedule'
		AND schedule_id %% %d = %d AND created_at > %d`, id, slots, slot, t0.UnixMicro())).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return time.UnixMicro(at.Int64), nil
}

// slotLateness returns the lateness of the occurrences of slot's schedules fired after
// t0 that were due by first.
func (r *repo) slotLateness(ctx context.Context, id int64, slots, slot int, t0, first time.Time) ([]time.Duration, error) {
	return r.late(ctx, fmt.Sprintf(`SELECT scheduled_at, created_at FROM runs WHERE id > %d AND trigger = 'schedule'
		AND schedule_id %% %d = %d AND state NOT IN ('missed', 'skipped') AND created_at > %d AND scheduled_at <= %d`,
		id, slots, slot, t0.UnixMicro(), first.UnixMicro()))
}

// lateness returns created_at − scheduled_at of the occurrences scheduled in [from, to)
// that became runs.
func (r *repo) lateness(ctx context.Context, from, to time.Time) ([]time.Duration, error) {
	return r.late(ctx, fmt.Sprintf(`SELECT scheduled_at, created_at FROM runs WHERE trigger = 'schedule'
		AND state NOT IN ('missed', 'skipped') AND scheduled_at >= %d AND scheduled_at < %d`, from.UnixMicro(), to.UnixMicro()))
}

// listSlow prints the occurrences scheduled in [from, to) that fired later than slow.
func (r *repo) listSlow(ctx context.Context, from, to time.Time, slow time.Duration) error {
	rows, err := r.db.QueryContext(ctx, fmt.Sprintf(`SELECT job, scheduled_at, created_at FROM runs WHERE trigger = 'schedule'
		AND state NOT IN ('missed', 'skipped') AND scheduled_at >= %d AND scheduled_at < %d AND created_at - scheduled_at > %d
		ORDER BY scheduled_at`, from.UnixMicro(), to.UnixMicro(), slow.Microseconds()))
	if err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var job string
		var sched, created int64
		if err := rows.Scan(&job, &sched, &created); err != nil {
			return err
		}
		logf("slow: %s scheduled %s fired %s late", job, time.UnixMicro(sched).Format("15:04:05.000"),
			time.Duration(created-sched)*time.Microsecond)
	}
	return rows.Err()
}

// takeoverLateness returns the lateness of the occurrences the new primary (epoch above
// old) fired after t0 that were due by its first firing.
func (r *repo) takeoverLateness(ctx context.Context, id, old int64, t0, first time.Time) ([]time.Duration, error) {
	return r.late(ctx, fmt.Sprintf(`SELECT scheduled_at, created_at FROM runs WHERE id > %d AND epoch > %d AND trigger = 'schedule'
		AND state NOT IN ('missed', 'skipped') AND created_at > %d AND scheduled_at <= %d`, id, old, t0.UnixMicro(), first.UnixMicro()))
}

func (r *repo) late(ctx context.Context, q string) ([]time.Duration, error) {
	rows, err := r.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var sched, created int64
		if err := rows.Scan(&sched, &created); err != nil {
			return nil, err
		}
		out = append(out, time.Duration(created-sched)*time.Microsecond)
	}
	return out, rows.Err()
}

// mem is a process's resident memory, now and at its peak.
type mem struct{ rss, hwm int64 }

func readMem(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return mem{}, fmt.Errorf("read memory of %d: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
	}
	return m, sc.Err()
}
