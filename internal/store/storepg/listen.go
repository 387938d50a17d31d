package storepg

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// Reconnect backoff of the listener.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

var topics = []string{store.TopicRuns, store.TopicAssigned, store.TopicLease, store.TopicConfig}

// Listen implements store.Notifier on a dedicated connection (LISTEN needs one session).
// While the connection is down the node keeps polling; the listener reconnects with
// backoff and says so in the log once per outage.
func (s *Store) Listen(ctx context.Context, fn func(store.Wakeup)) error {
	backoff := listenRetryMin
	down := false
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, func() {
			if down {
				s.log.Info("wake-up listener reconnected to postgres")
			}
			down, backoff = false, listenRetryMin
		})
		if ctx.Err() != nil {
			break
		}
		if !down {
			s.log.Warn("wake-up listener lost its postgres connection; polling meanwhile", "err", err)
			down = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenRetryMax)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func(store.Wakeup), connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeoutDefault+time.Second)
	conn, err := pgx.ConnectConfig(cctx, s.cfg.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, t := range topics {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channelPrefix + t}.Sanitize()); err != nil {
			return err
		}
	}
	connected()
	for {
		// A bounded wait doubles as a liveness check of the connection.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(store.Wakeup{Topic: strings.TrimPrefix(n.Channel, channelPrefix), Payload: n.Payload})
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, ConnectTimeoutDefault)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
