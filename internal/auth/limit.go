package auth

import (
	"fmt"
	"sync"
	"time"
)

// Failed logins: after LoginFailuresMax failures within LoginWindow for one user from
// one address, further attempts are refused until the window since the first ends.
const (
	LoginFailuresMax = 5
	LoginWindow      = time.Minute
)

// LimitError refuses a login while the limit holds.
type LimitError struct{ RetryAfter time.Duration }

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many failed logins for this user from this address: try again in %s", e.RetryAfter.Round(time.Second))
}

// Limiter counts failures per key in fixed windows. Safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	fails  map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

// NewLimiter allows max failures per key within window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, fails: map[string]*failures{}}
}

// Wait returns how long key must wait before trying again (0: it may try now).
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[key]
	if f == nil {
		return 0
	}
	if end := f.since.Add(l.window); !now.Before(end) {
		delete(l.fails, key)
		return 0
	} else if f.n >= l.max {
		return end.Sub(now)
	}
	return 0
}

// Fail records a failure of key.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[key]
	if f == nil || !now.Before(f.since.Add(l.window)) {
		f = &failures{since: now}
		l.fails[key] = f
	}
	f.n++
	if len(l.fails) > 100000 { // bound memory under a spray of names: forget the oldest window
		for k, v := range l.fails {
			if !now.Before(v.since.Add(l.window)) {
				delete(l.fails, k)
			}
		}
	}
}

// Reset forgets key's failures (after a success).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
