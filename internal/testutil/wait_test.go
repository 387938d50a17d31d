package testutil

import (
	"testing"
	"time"
)

func TestWaitSeesACondition(t *testing.T) {
	start := time.Now()
	n := 0
	Wait(t, time.Second, "three polls", func() bool { n++; return n >= 3 })
	if n != 3 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("polled %d times in %s", n, time.Since(start))
	}
}

type fatalRecorder struct {
	testing.TB
	failed string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestWaitFailsAfterWithin(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	defer func() {
		if r := recover(); r != rec || rec.failed == "" {
			t.Fatalf("Wait did not fail: %v", r)
		}
	}()
	Wait(rec, 20*time.Millisecond, "never", func() bool { return false })
}
