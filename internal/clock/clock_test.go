package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/clock"
)

// A node whose host clock is minutes off still reads the repository's time once synced.
func TestSyncCancelsSkew(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Minute, -3 * time.Minute, 0} {
		c := clock.New(skew)
		if d := time.Until(c.Local()); d < skew-time.Second || d > skew+time.Second {
			t.Fatalf("skew %s: Local is %s off", skew, d)
		}
		if err := c.Sync(context.Background(), func(context.Context) (time.Time, error) { return time.Now(), nil }); err != nil {
			t.Fatal(err)
		}
		if d := time.Until(c.Now()).Abs(); d > 5*time.Millisecond {
			t.Fatalf("skew %s: Now is %s off the repository after a sync", skew, d)
		}
		if off, ok := c.Offset(); !ok || (off+skew).Abs() > 5*time.Millisecond {
			t.Fatalf("skew %s: offset %s (synced %v), want about %s", skew, off, ok, -skew)
		}
	}
}

// A failed read or a slow sample keeps the last good offset.
func TestSyncKeepsGoodOffset(t *testing.T) {
	c := clock.New(time.Minute)
	repo := func(context.Context) (time.Time, error) { return time.Now(), nil }
	if err := c.Sync(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	good, _ := c.Offset()
	boom := errors.New("database away")
	if err := c.Sync(context.Background(), func(context.Context) (time.Time, error) { return time.Time{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("Sync error %v, want %v", err, boom)
	}
	// A slow read that also lies by a second (its reading is far from the round trip's middle).
	slow := func(context.Context) (time.Time, error) {
		time.Sleep(50 * time.Millisecond)
		return time.Now().Add(time.Second), nil
	}
	if err := c.Sync(context.Background(), slow); err != nil {
		t.Fatal(err)
	}
	if off, _ := c.Offset(); off != good {
		t.Fatalf("offset moved from %s to %s on a failed and a slow sample", good, off)
	}
}

// An unsynced clock reads Local.
func TestUnsyncedIsLocal(t *testing.T) {
	c := clock.New(time.Hour)
	if _, ok := c.Offset(); ok {
		t.Fatal("a new clock claims to be synced")
	}
	if d := c.Now().Sub(c.Local()).Abs(); d > time.Millisecond {
		t.Fatalf("unsynced Now is %s from Local", d)
	}
}
