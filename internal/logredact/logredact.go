// Package logredact keeps what must not be read out of a node's log: every line the
// server writes passes through it, and in the message and every attribute (strings,
// errors, anything that prints as text, in groups too) the passwords and query values of
// URLs become *** and the values it was given (the SMTP password, the cluster secret,
// and each secret value the node decrypts, as it does: Hide) become «redacted». The
// components redact what they know besides (a run's or a delivery's secret values, as
// «secret NAME»); this is the net under them.
package logredact

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/tandemhq/tandem/internal/auth"
)

// Hidden stands in for a value given to New.
const Hidden = "«redacted»"

// minValue is the shortest value hidden: shorter ones would blot out ordinary words.
const minValue = 4

// Handler wraps another handler; see the package doc.
type Handler struct {
	h      slog.Handler
	values *values // shared by the handlers derived from one New
}

// maxValues bounds the values hidden; past it the newest are not added (a cluster has
// far fewer secrets).
const maxValues = 10000

type values struct {
	mu sync.RWMutex
	vs []string
}

// New returns a handler that writes to h what it is given, redacted; the values in hide
// (those of fewer than 4 bytes are ignored) are hidden wherever they appear.
func New(h slog.Handler, hide ...string) *Handler {
	r := &Handler{h: h, values: &values{}}
	for _, v := range hide {
		r.Hide(v)
	}
	return r
}

// Hide adds v to the values hidden, from now on, by this handler and every one derived
// from it (WithAttrs, WithGroup): the node calls it with each secret value it decrypts.
// Safe for concurrent use.
func (r *Handler) Hide(v string) {
	if len(v) < minValue {
		return
	}
	r.values.mu.Lock()
	defer r.values.mu.Unlock()
	if !slices.Contains(r.values.vs, v) && len(r.values.vs) < maxValues {
		r.values.vs = append(r.values.vs, v)
		// Longest first, so that a value inside another is not hidden in part.
		slices.SortFunc(r.values.vs, func(a, b string) int { return len(b) - len(a) })
	}
}

// Redact is what the handler does to one piece of text.
func (r *Handler) Redact(s string) string {
	r.values.mu.RLock()
	for _, v := range r.values.vs {
		s = strings.ReplaceAll(s, v, Hidden)
	}
	r.values.mu.RUnlock()
	return auth.RedactURLs(s)
}

// Enabled implements slog.Handler.
func (r *Handler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (r *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (r *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = r.attr(a)
	}
	return &Handler{h: r.h.WithAttrs(red), values: r.values}
}

// WithGroup implements slog.Handler.
func (r *Handler) WithGroup(name string) slog.Handler {
	return &Handler{h: r.h.WithGroup(name), values: r.values}
}

func (r *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = r.attr(x)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			s = fmt.Sprintf("%+v", x)
		}
		// Left as it is (a number list stays a list in JSON) unless there is something
		// to hide; then it is written as the redacted text.
		if red := r.Redact(s); red != s {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
