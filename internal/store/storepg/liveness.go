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
	conn, err := s.holdLock(ctx, holder, key)
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
			nc, err := s.holdLock(wctx, holder, key)
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

func (s *Store) holdLock(ctx context.Context, holder string, key int64) (*sql.Conn, error) {
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
	// Record on which incarnation of the server the lock is held (see LivenessDead).
	if _, err := conn.ExecContext(cctx, `INSERT INTO liveness (holder, server_started) VALUES ($1, `+serverStarted+`)
		ON CONFLICT (holder) DO UPDATE SET server_started = EXCLUDED.server_started`, holder); err != nil {
		conn.Close()
		return nil, fmt.Errorf("record liveness lock: %w", err)
	}
	return conn, nil
}

// serverStarted is the server's start time in microseconds since the Unix epoch: it
// names the incarnation of the server.
const serverStarted = `(EXTRACT(EPOCH FROM pg_postmaster_start_time()) * 1000000)::BIGINT`

// livenessRetake is how long after the database server started a free liveness lock
// proves its holder's death even if the holder had not taken it on this incarnation of
// the server: a restart frees every lock at once, and a live holder's watcher (which
// looks every second) takes its lock again within a second or two.
const livenessRetake = 5 * time.Second

// LivenessDead implements store.Liveness: holder's advisory lock can be taken, so no
// session holds it any more; and either the holder had taken it on this incarnation of
// the server (so its session ended: its process died or its connection broke), or the
// server has been up long enough for a live holder to have taken it again.
func (s *Store) LivenessDead(ctx context.Context, holder string) (bool, error) {
	key := livenessKey(holder)
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeoutDefault)
	defer cancel()
	conn, err := s.SQL().Conn(cctx)
	if err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	defer conn.Close()
	var free, heldHere bool
	var uptime float64
	err = conn.QueryRowContext(cctx, `SELECT pg_try_advisory_lock($1),
		COALESCE((SELECT server_started FROM liveness WHERE holder = $2) = `+serverStarted+`, false),
		EXTRACT(EPOCH FROM clock_timestamp() - pg_postmaster_start_time())::float8`, key, holder).Scan(&free, &heldHere, &uptime)
	if err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	if free {
		if _, err := conn.ExecContext(cctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			return true, fmt.Errorf("release probe lock of %s: %w", holder, err)
		}
	}
	return free && (heldHere || uptime >= livenessRetake.Seconds()), nil
}
