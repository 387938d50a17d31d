package storepg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// livenessKey is the advisory lock key of a holder.
func livenessKey(holder string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem-liveness:" + holder))
	return int64(h.Sum64())
}

// LivenessHold implements store.Liveness with a session advisory lock on a dedicated
// connection: the database frees it the instant the session ends (process death, or a
// broken connection). A watcher takes it again on a new connection after a break.
func (s *Store) LivenessHold(ctx context.Context, holder string) (func(), error) {
	key := livenessKey(holder)
	conn, err := s.holdLock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("hold liveness lock of %s: %w", holder, err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			c := conn
			mu.Unlock()
			pctx, pcancel := context.WithTimeout(wctx, 2*time.Second)
			var err error
			if c != nil {
				err = c.PingContext(pctx)
			}
			pcancel()
			if c != nil && err == nil {
				continue
			}
			if c != nil {
				c.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // keeps it out of the pool
				c.Close()
			}
			nc, err := s.holdLock(wctx, key)
			if err != nil {
				s.log.Warn("liveness lock lost; retaking", "err", err)
			}
			mu.Lock()
			conn = nc
			mu.Unlock()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		if conn != nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = conn.ExecContext(rctx, `SELECT pg_advisory_unlock($1)`, key)
			rcancel()
			conn.Close()
		}
	}, nil
}

func (s *Store) holdLock(ctx context.Context, key int64) (*sql.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeoutDefault)
	defer cancel()
	conn, err := s.SQL().Conn(cctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRowContext(cctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, err
	}
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("advisory lock %d is held by another session", key)
	}
	return conn, nil
}

// livenessRetake is how long after the database server started a free liveness lock is
// no proof of death: a restart frees every session's locks at once, and a live holder's
// watcher (which looks every second) needs a moment to take its lock again. Meanwhile
// the holder is judged by its lease alone.
const livenessRetake = 5 * time.Second

// LivenessDead implements store.Liveness: holder's advisory lock can be taken, so no
// session holds it any more, and the server has been up long enough for a live holder
// to have taken it again after a restart.
func (s *Store) LivenessDead(ctx context.Context, holder string) (bool, error) {
	key := livenessKey(holder)
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeoutDefault)
	defer cancel()
	conn, err := s.SQL().Conn(cctx)
	if err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	defer conn.Close()
	var uptime float64
	if err := conn.QueryRowContext(cctx, `SELECT EXTRACT(EPOCH FROM clock_timestamp() - pg_postmaster_start_time())::float8`).Scan(&uptime); err != nil {
		return false, fmt.Errorf("check liveness of %s: server start time: %w", holder, err)
	}
	if uptime < livenessRetake.Seconds() {
		return false, nil
	}
	var free bool
	if err := conn.QueryRowContext(cctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&free); err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	if free {
		if _, err := conn.ExecContext(cctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			return true, fmt.Errorf("release probe lock of %s: %w", holder, err)
		}
	}
	return free, nil
}
