package console

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api"
)

// snapshot is the status table as read at one instant.
type snapshot struct {
	st  api.Status
	err error
	at  time.Time // when the reading began, on this host's monotonic clock
}

// statusHub reads the server-status table for every open status page: at most once per
// interval however many pages are open (each page load and each live stream shares the
// last reading while it is fresh), and not at all while no page is open.
type statusHub struct {
	src   StatusSource
	every time.Duration
	log   *slog.Logger
	wg    *sync.WaitGroup

	fetch  sync.Mutex // one reading at a time; those who wait share it
	mu     sync.Mutex
	last   snapshot
	subs   map[chan snapshot]struct{}
	ctx    context.Context
	cancel context.CancelFunc
	loop   bool
}

func newStatusHub(src StatusSource, every time.Duration, log *slog.Logger, wg *sync.WaitGroup) *statusHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &statusHub{src: src, every: every, log: log, wg: wg, subs: map[chan snapshot]struct{}{}, ctx: ctx, cancel: cancel}
}

func (h *statusHub) close() { h.cancel() }

// current returns a reading no older than the interval, reading the status only when
// the last reading is older.
func (h *statusHub) current(ctx context.Context) snapshot {
	h.fetch.Lock()
	defer h.fetch.Unlock()
	h.mu.Lock()
	last := h.last
	h.mu.Unlock()
	// Stamped when the reading starts, so the poller's ticks, an interval apart,
	// each find the last reading just stale (less a little for the ticker's jitter).
	if !last.at.IsZero() && time.Since(last.at) < h.every-h.every/50 {
		return last
	}
	began := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := h.src.Status(rctx)
	cancel()
	s := snapshot{st: st, err: err, at: began}
	h.mu.Lock()
	h.last = s
	h.mu.Unlock()
	return s
}

// subscribe returns a channel that receives each new reading (the latest only, when
// the reader is slow) until cancel is called.
func (h *statusHub) subscribe() (<-chan snapshot, func()) {
	ch := make(chan snapshot, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	start := !h.loop && h.ctx.Err() == nil
	if start {
		h.loop = true
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if start {
		go h.run()
	}
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// run reads the status every interval while anyone subscribes, and hands each reading
// to every subscriber.
func (h *statusHub) run() {
	defer h.wg.Done()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.mu.Lock()
		if len(h.subs) == 0 || h.ctx.Err() != nil {
			h.loop = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		s := h.current(h.ctx)
		if s.err != nil && h.ctx.Err() == nil {
			h.log.Warn("console: cannot read the status", "err", s.err)
		}
		h.mu.Lock()
		for ch := range h.subs {
			select {
			case <-ch: // drop the reading it has not taken
			default:
			}
			ch <- s
		}
		h.mu.Unlock()
		select {
		case <-t.C:
		case <-h.ctx.Done():
		}
	}
}
