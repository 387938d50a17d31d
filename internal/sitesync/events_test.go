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

// A failure the sender cannot record raises no sync.failed: the event goes with the
// failure count it reports, in its transaction.
func TestUnrecordedFailureRaisesNoEvent(t *testing.T) {
	t.Parallel()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default().SiteSync
	cfg.Target, cfg.Token, cfg.Timeout, cfg.Retry, cfg.MaxFailures = []string{"http://127.0.0.1:1"}, "t", time.Second, time.Millisecond, 2
	var refused atomic.Int32
	s := sitesync.New(sitesync.Params{Store: stateRefused{st, &refused}, Config: cfg, Node: "a", Poll: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
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
