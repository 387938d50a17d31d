package sitesync_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/sitesync"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

// stateRefused refuses every write of the sender's state (SyncSourceSet), counting them.
type stateRefused struct {
	sitesync.Store
	refused *atomic.Int32
}

func (s stateRefused) SyncSourceSet(context.Context, store.SyncSource, ...store.EventAppendParams) error {
	s.refused.Add(1)
	return errors.New("disk full")
}

// runUnreachable runs a sender, until cancel, whose target refuses every connection,
// on a fresh SQLite repository seen through wrap; done gives Run's error.
func runUnreachable(t *testing.T, maxFailures int, wrap func(store.Store) sitesync.Store) (st store.Store, cancel func(), done chan error) {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default().SiteSync
	cfg.Target, cfg.Token, cfg.Timeout, cfg.Retry, cfg.MaxFailures = []string{"http://127.0.0.1:1"}, "t", time.Second, time.Millisecond, maxFailures
	s := sitesync.New(sitesync.Params{Store: wrap(st), Config: cfg, Node: "a", Poll: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return st, cancel, done
}

// A failure the sender cannot record raises no sync.failed: the event goes with the
// failure count it reports, in its transaction.
func TestUnrecordedFailureRaisesNoEvent(t *testing.T) {
	t.Parallel()
	var refused atomic.Int32
	st, cancel, done := runUnreachable(t, 100, func(st store.Store) sitesync.Store { return stateRefused{st, &refused} })
	events := func(typ string) []store.Event {
		evs, err := st.EventList(context.Background(), store.EventListParams{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	testutil.Wait(t, 10*time.Second, "three failures the sender could not record", func() bool { return refused.Load() >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if evs := events("sync.failed"); len(evs) != 0 {
		t.Fatalf("sync.failed raised for failures whose count was never recorded: %+v", evs)
	}
	if got, err := st.SyncSourceGet(context.Background()); err != nil || got.Failures != 0 {
		t.Fatalf("sender state %+v (%v), want no failure recorded", got, err)
	}
}

// While the sender cannot store its failure count, it still counts its failures in a
// row: the backoff grows and max_failures pauses it (the pause is stored apart, with its
// sync.paused). It read the stored count on every retry before, and stayed at one.
func TestUnrecordedFailuresStillPauseTheSender(t *testing.T) {
	t.Parallel()
	var refused atomic.Int32
	// stateRefused refuses the failure count only: the pause (SyncSourcePause) is stored.
	st, cancel, done := runUnreachable(t, 4, func(st store.Store) sitesync.Store { return stateRefused{st, &refused} })
	testutil.Wait(t, 10*time.Second, "the sender to pause itself", func() bool {
		got, err := st.SyncSourceGet(context.Background())
		return err == nil && got.Paused
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := refused.Load(); n != 4 {
		t.Fatalf("%d failure counts refused before the pause, want max_failures (4)", n)
	}
	evs, err := st.EventList(context.Background(), store.EventListParams{Type: "sync.paused"})
	if err != nil || len(evs) != 1 || evs[0].Data["failures"] != float64(4) {
		t.Fatalf("sync.paused events %+v (%v), want one after 4 failures", evs, err)
	}
}
