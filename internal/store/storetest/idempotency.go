package storetest

import (
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// A retried on-demand request with the same idempotency key gets the run the first one
// created, also when the retries race and under overlap "replace" (which would otherwise
// cancel the first); a key given for another job is a conflict; no key, no dedup.
func testRunCreateIdempotent(t *testing.T, s store.Store) {
	sp := spec("idem")
	sp.Overlap = job.OverlapReplace
	apply(t, s, sp, spec("other"))
	first := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "idem", Now: t0, IdempotencyKey: "k1"}))
	again := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "idem", Now: t0, IdempotencyKey: "k1"}))
	if again.ID != first.ID || again.State != store.RunQueued {
		t.Fatalf("retried create: run %d (%s), want run %d still queued", again.ID, again.State, first.ID)
	}
	_, err := s.RunCreate(ctx(t), store.RunCreateParams{Job: "other", Now: t0, IdempotencyKey: "k1"})
	wantErr(t, err, store.ErrConflict)

	var wg sync.WaitGroup
	ids := make([]int64, 8)
	for i := range ids {
		wg.Go(func() {
			r, err := s.RunCreate(ctx(t), store.RunCreateParams{Job: "other", Now: t0, IdempotencyKey: "k2"})
			if err != nil {
				t.Errorf("concurrent create: %v", err)
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates with one key made runs %v, want one", ids)
		}
	}
	a := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "other", Now: t0}))
	b := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "other", Now: t0}))
	if a.ID == b.ID {
		t.Fatalf("two creates without a key made one run %d", a.ID)
	}
	if n := countRuns(t, s, "other"); n != 3 {
		t.Fatalf("%d runs of other, want 3", n)
	}
}
