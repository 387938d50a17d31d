// Package testutil holds what tandem's tests share: waiting for a condition.
package testutil

import (
	"testing"
	"time"
)

// Wait polls cond until it holds, failing t (naming what it waited for) once within
// has passed. It polls every few milliseconds at first, then less often (up to every
// 100 ms), so quick conditions are seen at once and slow ones cost little.
func Wait(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	poll := 2 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(poll)
		poll = min(2*poll, 100*time.Millisecond)
	}
}
