// Package logquiet keeps a node's log readable while something keeps failing: a warning
// or error that repeats (same level, message and logger attributes) within a window is
// written once; the next one written after the window says how many were left out.
//
// A database outage makes every loop of a node fail on every pass (the lease every 50 ms,
// the worker, the dispatcher, the heartbeat): without this, each would write a line per
// pass. Lines below warning level (transitions, runs) are never held back.
package logquiet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the repeats remembered; past it the memory starts afresh.
const maxKeys = 1000

// Handler wraps another handler; see the package doc.
type Handler struct {
	h      slog.Handler
	window time.Duration
	scope  string // the attributes and groups added to this logger, as part of the key
	st     *state
}

type state struct {
	mu   sync.Mutex
	seen map[string]*seen
}

type seen struct {
	last    time.Time // when one was last written
	dropped int       // left out since
}

// New returns a handler that writes to h and holds back repeats within window.
func New(h slog.Handler, window time.Duration) *Handler {
	return &Handler{h: h, window: window, st: &state{seen: map[string]*seen{}}}
}

// Enabled implements slog.Handler.
func (q *Handler) Enabled(ctx context.Context, l slog.Level) bool { return q.h.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (q *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return q.h.Handle(ctx, r)
	}
	key := q.scope + "\x00" + r.Level.String() + "\x00" + r.Message
	q.st.mu.Lock()
	s := q.st.seen[key]
	if s != nil && r.Time.Sub(s.last) < q.window {
		s.dropped++
		q.st.mu.Unlock()
		return nil
	}
	dropped := 0
	if s != nil {
		dropped = s.dropped
	}
	if len(q.st.seen) >= maxKeys {
		clear(q.st.seen)
	}
	q.st.seen[key] = &seen{last: r.Time}
	q.st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats_left_out", dropped))
	}
	return q.h.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (q *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{h: q.h.WithAttrs(as), window: q.window, scope: q.scope + fmt.Sprint(as), st: q.st}
}

// WithGroup implements slog.Handler.
func (q *Handler) WithGroup(name string) slog.Handler {
	return &Handler{h: q.h.WithGroup(name), window: q.window, scope: q.scope + "/" + name, st: q.st}
}
