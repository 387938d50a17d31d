package deliver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/deliver"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a webhook endpoint that verifies signatures and answers from a script.
type receiver struct {
	mu     sync.Mutex
	ids    []string                  // webhook-id of every verified request, in order
	answer func(n int) (int, string) // status and Retry-After for the n-th request (0-based)
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(n int) (int, string)) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if err := wh.Verify(b, req.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		n := len(r.ids)
		r.ids = append(r.ids, req.Header.Get("webhook-id"))
		r.mu.Unlock()
		code, after := r.answer(n)
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func openStore(t *testing.T) store.Store {
	s, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// endRun applies a job delivering to url and runs it to success on node; it returns
// the run's delivery record.
func endRun(t *testing.T, s store.Store, url, node string) store.Delivery {
	t.Helper()
	ctx := context.Background()
	sp := job.Spec{Name: "hooked", Noop: &job.Noop{}, Deliver: []job.Deliver{{Webhook: url, Secret: secret}}}
	sp.Default()
	if err := sp.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JobApply(ctx, store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp}}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.RunCreate(ctx, store.RunCreateParams{Job: "hooked", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunAssign(ctx, store.RunAssignParams{Now: time.Now(), Assignments: []store.Assignment{{RunID: r.ID, Node: node, Token: "tok"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RunStart(ctx, s, store.RunStartParams{RunID: r.ID, Token: "tok", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RunFinish(ctx, s, store.RunFinishParams{RunID: r.ID, Token: "tok", Now: time.Now(), State: store.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.DeliveryList(ctx, store.DeliveryListParams{RunID: r.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("records of run %d: %v %v", r.ID, ds, err)
	}
	return ds[0]
}

func deliverer(s store.Store, node string, p deliver.Params) *deliver.Deliverer {
	p.Store, p.Node, p.BaseURL = s, node, "http://127.0.0.1:1"
	p.Senders = map[string]channel.Sender{job.ChannelWebhook: &channel.Webhook{}}
	p.Poll = 20 * time.Millisecond
	return deliver.New(p)
}

// run runs d until the test ends.
func run(t *testing.T, d *deliver.Deliverer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitState polls the record until it is in state want.
func waitState(t *testing.T, s store.Store, id int64, want store.DeliveryState, within time.Duration) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := s.DeliveryGet(context.Background(), id)
		if err == nil && d.State == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %d is %s (%v) after %s, want %s: %+v", id, d.State, err, within, want, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A 503 with Retry-After is retried after it; the next attempt succeeds, under the same
// webhook-id, and both attempts are recorded.
func TestRetryAfter503(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	rcv := newReceiver(t, func(n int) (int, string) {
		if n == 0 {
			return http.StatusServiceUnavailable, "1"
		}
		return http.StatusOK, ""
	})
	rec := endRun(t, s, rcv.srv.URL, "n1")
	start := time.Now()
	run(t, deliverer(s, "n1", deliver.Params{Backoff: time.Hour}))
	d := waitState(t, s, rec.ID, store.DeliveryDelivered, 10*time.Second)
	if took := time.Since(start); took < time.Second {
		t.Fatalf("delivered after %s: Retry-After 1 was not honoured", took)
	}
	full, _ := s.DeliveryGet(context.Background(), d.ID)
	if len(full.History) != 2 || full.History[0].Outcome != store.DeliveryPending || full.History[0].Response != "HTTP 503 Service Unavailable" ||
		full.History[1].Outcome != store.DeliveryDelivered {
		t.Fatalf("history: %+v", full.History)
	}
	if ids := rcv.seen(); len(ids) != 2 || ids[0] != d.Key() || ids[1] != d.Key() {
		t.Fatalf("webhook-ids %v, want %s twice", ids, d.Key())
	}
}

// 410 disables the record: no more attempts.
func TestGoneDisables(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	rcv := newReceiver(t, func(int) (int, string) { return http.StatusGone, "" })
	rec := endRun(t, s, rcv.srv.URL, "n1")
	d := deliverer(s, "n1", deliver.Params{Backoff: 10 * time.Millisecond})
	if n, err := d.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once: %d %v", n, err)
	}
	got := waitState(t, s, rec.ID, store.DeliveryDisabled, time.Second)
	if n, _ := d.Once(context.Background()); n != 0 || got.Attempts != 1 || len(rcv.seen()) != 1 {
		t.Fatalf("after 410: claimed %d more, %d attempts, %d requests", n, got.Attempts, len(rcv.seen()))
	}
	evs, _ := s.EventList(context.Background(), store.EventListParams{Type: store.EventDeliveryDisabled})
	if len(evs) != 1 {
		t.Fatalf("delivery.disabled events: %+v", evs)
	}
}

// A receiver that keeps failing: the record ends failed after max attempts, with
// delivery.failed; an operator's retry gives it a fresh budget.
func TestFailsAfterMaxAttemptsThenRetried(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	var mu sync.Mutex
	healthy := false
	rcv := newReceiver(t, func(int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return http.StatusNoContent, ""
		}
		return http.StatusInternalServerError, ""
	})
	rec := endRun(t, s, rcv.srv.URL, "n1")
	run(t, deliverer(s, "n1", deliver.Params{MaxAttempts: 3, Backoff: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}))
	d := waitState(t, s, rec.ID, store.DeliveryFailed, 10*time.Second)
	if d.Attempts != 3 || len(rcv.seen()) != 3 {
		t.Fatalf("failed after %d attempts, %d requests; want 3", d.Attempts, len(rcv.seen()))
	}
	evs, _ := s.EventList(context.Background(), store.EventListParams{Type: store.EventDeliveryFailed})
	if len(evs) != 1 || evs[0].Data["key"] != d.Key() {
		t.Fatalf("delivery.failed events: %+v", evs)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	if _, err := s.DeliveryRetry(context.Background(), store.DeliveryRetryParams{ID: d.ID, Now: time.Now(), By: "test"}); err != nil {
		t.Fatal(err)
	}
	if d = waitState(t, s, rec.ID, store.DeliveryDelivered, 10*time.Second); d.Attempts != 4 {
		t.Fatalf("after the retry: %+v", d)
	}
}

// A claimer that dies mid-send (claims and never records): its claim expires and
// another node sends the record, under the same webhook-id; the record ends delivered
// once, and the dead claimer's late outcome is refused.
func TestExpiredClaimIsSentByAnotherNode(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	rcv := newReceiver(t, func(int) (int, string) { return http.StatusOK, "" })
	rec := endRun(t, s, rcv.srv.URL, "a")
	now := time.Now()
	claimed, err := s.DeliveryClaim(context.Background(), store.DeliveryClaimParams{Node: "a", Token: "dead", Now: now,
		Until: now.Add(500 * time.Millisecond), Handoff: time.Hour})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("a's claim: %v %v", claimed, err)
	}
	run(t, deliverer(s, "b", deliver.Params{Handoff: 0, Claim: time.Second}))
	d := waitState(t, s, rec.ID, store.DeliveryDelivered, 10*time.Second)
	if d.ClaimNode != "b" || d.Attempts != 1 {
		t.Fatalf("delivered by %s after %d attempts, want b after 1", d.ClaimNode, d.Attempts)
	}
	if ids := rcv.seen(); len(ids) != 1 || ids[0] != d.Key() {
		t.Fatalf("webhook-ids %v", ids)
	}
	_, err = store.DeliveryFinish(context.Background(), s, store.DeliveryFinishParams{ID: rec.ID, Token: "dead", Node: "a", Now: time.Now(), State: store.DeliveryDelivered})
	if err == nil {
		t.Fatal("the dead claimer's late outcome was accepted")
	}
}

// countingStore counts the transactions that record attempts and the attempts in them;
// each takes a while, as on a busy repository.
type countingStore struct {
	store.Store
	mu               sync.Mutex
	batches, records int
}

func (c *countingStore) DeliveryFinishBatch(ctx context.Context, ps []store.DeliveryFinishParams) ([]store.DeliveryFinishResult, error) {
	time.Sleep(20 * time.Millisecond)
	c.mu.Lock()
	c.batches++
	c.records += len(ps)
	c.mu.Unlock()
	return c.Store.DeliveryFinishBatch(ctx, ps)
}

// Attempts that end while another is being recorded are recorded together: the
// repository takes one write for many records (group commit), and each still ends
// delivered.
func TestAttemptsRecordedTogether(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t, func(int) (int, string) { return http.StatusOK, "" })
	var recs []store.Delivery
	for range 40 {
		recs = append(recs, endRun(t, s, rcv.srv.URL, "a"))
	}
	cs := &countingStore{Store: s}
	d := deliverer(cs, "a", deliver.Params{Concurrency: 8})
	run(t, d)
	for _, rec := range recs {
		waitState(t, s, rec.ID, store.DeliveryDelivered, 10*time.Second)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.records != len(recs) {
		t.Fatalf("%d attempts recorded, want %d", cs.records, len(recs))
	}
	if cs.batches*2 > cs.records {
		t.Fatalf("%d attempts took %d transactions: not recorded together", cs.records, cs.batches)
	}
	t.Logf("%d attempts recorded in %d transactions", cs.records, cs.batches)
}
