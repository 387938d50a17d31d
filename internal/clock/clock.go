// Package clock gives a node its wall clock. The cluster agrees on one clock, the
// repository's: leases and heartbeats are judged by it inside the database. A node's own
// wall clock may be off by minutes (a badly set host, or the skew a test injects); the
// instants a node decides on by itself — when an occurrence is due, when a retry may
// start, the times it records — come from Now, the node's estimate of the repository's
// clock, so that an error in the host's clock does not move them.
//
// Durations are never measured with this package's wall readings: time.Now's monotonic
// reading, which Local and Now keep, does that.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is one node's wall clock: the host's, shifted by a configured skew, corrected by
// the offset to the repository's clock measured at the last Sync.
type Clock struct {
	skew time.Duration

	mu      sync.Mutex
	offset  time.Duration // repository minus Local, at the best recent sample
	bestRTT time.Duration // round trip of the best recent sample; 0: none yet
	synced  bool
}

// New returns a clock shifted by skew (0 in production).
func New(skew time.Duration) *Clock { return &Clock{skew: skew} }

// Local is the host's clock as this node reads it.
func (c *Clock) Local() time.Time { return time.Now().Add(c.skew) }

// Now is the node's estimate of the repository's clock (Local until the first Sync).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.Local().Add(off)
}

// Offset returns the correction applied to Local and whether a sync has measured it.
func (c *Clock) Offset() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.synced
}

// Sync reads the repository's clock once and takes the offset from it, assuming the
// reading was taken halfway through the round trip (so its error is at most half the
// round trip). A sample whose round trip is much slower than the best recent one (a
// busy database, a pause of this process) is not used; the best round trip ages so
// that a lasting slowdown is accepted after a while.
func (c *Clock) Sync(ctx context.Context, read func(context.Context) (time.Time, error)) error {
	before := c.Local()
	repo, err := read(ctx)
	after := c.Local()
	if err != nil {
		return err
	}
	rtt := after.Sub(before) // monotonic
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced && rtt > 2*c.bestRTT+time.Millisecond {
		c.bestRTT += c.bestRTT/8 + 100*time.Microsecond
		return nil
	}
	c.bestRTT = rtt
	c.offset = repo.Sub(before.Add(rtt / 2))
	c.synced = true
	return nil
}
