package storepg_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storepg"
	"github.com/tandemhq/tandem/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := storepg.Open(context.Background(), pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open, storetest.Notifier, storetest.Analyzer) }

// Nodes starting at the same moment migrate one database once.
func TestConcurrentMigration(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := storepg.Open(context.Background(), url, nil)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
	}
	s, err := storepg.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rows, versions int
	err = s.SQL().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions)
	if err != nil || rows != versions || versions < 2 {
		t.Fatalf("%d migration records for %d versions (err %v): each migration must apply once", rows, versions, err)
	}
}

// A queued run wakes listeners on other connections at once.
func TestListenWakeups(t *testing.T) {
	s := open(t).(*storepg.Store)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan store.Wakeup, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, func(w store.Wakeup) { got <- w })
	}()
	defer func() { cancel(); <-done }()
	sp := job.Spec{Name: "w", Command: &job.Command{Argv: []string{"true"}}}
	sp.Default()
	// The listener connects asynchronously: repeat the change until a wake-up arrives.
	deadline := time.After(20 * time.Second)
	for {
		if _, err := s.JobApply(ctx, store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp}}}); err != nil {
			t.Fatal(err)
		}
		select {
		case w := <-got:
			if w.Topic != store.TopicConfig {
				t.Fatalf("wake-up %+v, want topic %s", w, store.TopicConfig)
			}
			if _, err := s.RunCreate(ctx, store.RunCreateParams{Job: "w", Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case w := <-got:
					if w.Topic == store.TopicRuns {
						return
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no runs wake-up after RunCreate")
				}
			}
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake-up within 20s")
		}
	}
}

// A queue that grows fast gets fresh statistics from Analyze, long before autovacuum would
// look; a table that did not change much is left alone.
func TestAnalyzeStaleTables(t *testing.T) {
	s, err := storepg.Open(context.Background(), pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sp := job.Spec{Name: "grow", Noop: &job.Noop{}}
	sp.Default()
	if _, err := s.JobApply(ctx, store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunCreateBatch(ctx, store.RunCreateBatchParams{Job: "grow", Count: 5000, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The server's statistics counters are flushed a moment after the transaction.
	deadline := time.Now().Add(15 * time.Second)
	for {
		names, err := s.Analyze(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(names, "runs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5,000 new runs, and Analyze analyzed %v, not runs", names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var tuples float64
	if err := s.SQL().QueryRow(`SELECT reltuples FROM pg_class WHERE relname = 'runs'`).Scan(&tuples); err != nil || tuples < 4000 {
		t.Fatalf("runs has %v rows by its statistics (%v), want about 5,000", tuples, err)
	}
	time.Sleep(time.Second)
	names, err := s.Analyze(ctx)
	if err != nil || slices.Contains(names, "runs") {
		t.Fatalf("analyzed %v (%v) with nothing changed since", names, err)
	}
}
