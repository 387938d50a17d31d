package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// deliverSpec is a job with three entries: a webhook on success, an email on failure
// and a directory always.
func deliverSpec(name string) job.Spec {
	sp := spec(name)
	sp.Deliver = []job.Deliver{
		{Webhook: "https://hooks.example.com/r"},
		{Email: []string{"a@example.com"}, On: []string{job.OnFailure}},
		{Directory: "/srv/r/{{.Job}}", On: []string{job.OnAlways}},
	}
	for i := range sp.Deliver {
		sp.Deliver[i].Default()
	}
	return sp
}

func entries(ds []store.Delivery) []int {
	var out []int
	for _, d := range ds {
		out = append(out, d.Entry)
	}
	slices.Sort(out)
	return out
}

func runDeliveries(t *testing.T, s store.Store, run int64) []store.Delivery {
	t.Helper()
	return must[[]store.Delivery](t)(s.DeliveryList(ctx(t), store.DeliveryListParams{RunID: run}))
}

// A run's delivery records are written with its final state, one per entry matching
// how it ended, never twice; a retried attempt, a run of a job without entries, and a
// deleted job's runs have none.
func testDeliveriesCreatedWithTheResult(t *testing.T, s store.Store) {
	noRetry := deliverSpec("d")
	retry := deliverSpec("dr")
	retry.Retries = 1
	apply(t, s, noRetry, retry, spec("plain"))
	finish := func(name, tok string, st store.RunState, outputs bool) store.Run {
		t.Helper()
		r := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: name, Now: t0})), "n1", tok)
		p := store.RunFinishParams{RunID: r.ID, Token: tok, Now: t0.Add(time.Second), State: st}
		if outputs {
			p.Outputs = []store.Output{{Name: "a.csv", Size: 1, SHA256: "x"}}
		}
		return must[store.Run](t)(store.RunFinish(ctx(t), s, p))
	}
	ok := finish("d", "t1", store.RunSucceeded, true)
	got := runDeliveries(t, s, ok.ID)
	if e := entries(got); !slices.Equal(e, []int{0, 2}) {
		t.Fatalf("succeeded run: entries %v, want [0 2]", e)
	}
	for _, d := range got {
		if d.State != store.DeliveryPending || d.Holder != "n1" || d.Job != "d" || !d.NextAt.Equal(*ok.FinishedAt) || d.Attempts != 0 {
			t.Fatalf("new record: %+v", d)
		}
		if want := noRetry.Deliver[d.Entry]; d.Channel != want.Channel() || d.Spec.Target() != want.Target() {
			t.Fatalf("record %d is %s %s, want entry %d's %s %s", d.ID, d.Channel, d.Spec.Target(), d.Entry, want.Channel(), want.Target())
		}
	}
	// A second result for the attempt is refused and makes no record.
	_, err := store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: ok.ID, Token: "t1", Now: t0, State: store.RunSucceeded})
	wantErr(t, err, store.ErrStale)
	if n := len(runDeliveries(t, s, ok.ID)); n != 2 {
		t.Fatalf("after a repeated result: %d records, want 2", n)
	}
	// Through the batch, plain and with outputs alike: failed gets entries 1 and 2.
	var ids []int64
	var items []store.RunFinishParams
	for i, tok := range []string{"b1", "b2"} {
		r := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "d", Now: t0})), "n2", tok)
		p := store.RunFinishParams{RunID: r.ID, Token: tok, Now: t0.Add(time.Second), State: store.RunFailed}
		if i == 1 {
			p.Stdout = []byte("out")
		}
		ids, items = append(ids, r.ID), append(items, p, p) // each twice: the second is stale
	}
	errs := must[[]error](t)(s.RunFinishBatch(ctx(t), store.RunFinishBatchParams{Items: items}))
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("batch: %v", errs)
	}
	for _, id := range ids {
		if e := entries(runDeliveries(t, s, id)); !slices.Equal(e, []int{1, 2}) {
			t.Fatalf("failed run %d: entries %v, want [1 2]", id, e)
		}
	}
	// A failed attempt queued for a retry has ended nothing yet.
	r := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "dr", Now: t0})), "n1", "r1")
	retryAt := t0.Add(time.Minute)
	must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "r1", Now: t0, State: store.RunFailed, RetryAt: &retryAt}))
	if n := len(runDeliveries(t, s, r.ID)); n != 0 {
		t.Fatalf("a run queued for its retry has %d records", n)
	}
	// Canceled while queued: "always" only.
	c := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "d", Now: t0}))
	must[store.Run](t)(s.RunCancel(ctx(t), store.RunCancelParams{ID: c.ID, Now: t0}))
	if e := entries(runDeliveries(t, s, c.ID)); !slices.Equal(e, []int{2}) {
		t.Fatalf("canceled run: entries %v, want [2]", e)
	}
	if r := finish("plain", "p1", store.RunSucceeded, false); len(runDeliveries(t, s, r.ID)) != 0 {
		t.Fatal("a job without entries has records")
	}
	// Re-applied without entries: later runs have none; the earlier records stay.
	apply(t, s, spec("d"))
	if r := finish("d", "t9", store.RunSucceeded, false); len(runDeliveries(t, s, r.ID)) != 0 {
		t.Fatal("a job whose entries were removed has records")
	}
	if n := len(must[[]store.Delivery](t)(s.DeliveryList(ctx(t), store.DeliveryListParams{Job: "d"}))); n != 7 {
		t.Fatalf("job d has %d records, want 7", n)
	}
	pending := must[[]store.Delivery](t)(s.DeliveryList(ctx(t), store.DeliveryListParams{States: []store.DeliveryState{store.DeliveryPending}, Limit: 3}))
	if len(pending) != 3 || pending[0].ID < pending[1].ID {
		t.Fatalf("list of 3 pending, newest first: %+v", pending)
	}
}

// Claims: the holder first, others after the handoff; one claimer at a time; an
// expired claim goes to another claimer, and the old claimer's outcome is refused.
func testDeliveryClaims(t *testing.T, s store.Store) {
	apply(t, s, deliverSpec("c"))
	r := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "c", Now: t0})), "holder", "t")
	must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t", Now: t0, State: store.RunSucceeded}))
	claim := func(node, tok string, now time.Time) []store.Delivery {
		t.Helper()
		return must[[]store.Delivery](t)(s.DeliveryClaim(ctx(t), store.DeliveryClaimParams{Node: node, Token: tok, Now: now,
			Until: now.Add(time.Minute), Handoff: 5 * time.Second}))
	}
	if got := claim("other", "o1", t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("another node claimed before the handoff: %+v", got)
	}
	if got := claim("holder", "h1", t0.Add(-time.Second)); len(got) != 0 {
		t.Fatalf("claimed before due: %+v", got)
	}
	got := claim("holder", "h1", t0)
	if len(got) != 2 || got[0].State != store.DeliverySending || got[0].ClaimNode != "holder" || got[0].ClaimToken != "h1" {
		t.Fatalf("holder's claim: %+v", got)
	}
	if again := claim("other", "o2", t0.Add(30*time.Second)); len(again) != 0 {
		t.Fatalf("claimed twice while the claim holds: %+v", again)
	}
	// The first is delivered; the second's claim expires and another node takes it.
	d := must[store.Delivery](t)(store.DeliveryFinish(ctx(t), s, store.DeliveryFinishParams{ID: got[0].ID, Token: "h1", Node: "holder",
		StartedAt: t0, Now: t0.Add(time.Second), State: store.DeliveryDelivered, Response: "HTTP 200 OK"}))
	if d.State != store.DeliveryDelivered || d.Attempts != 1 || d.DeliveredAt == nil || d.LastResponse != "HTTP 200 OK" {
		t.Fatalf("delivered: %+v", d)
	}
	late := claim("other", "o3", t0.Add(2*time.Minute))
	if len(late) != 1 || late[0].ID != got[1].ID || late[0].ClaimToken != "o3" {
		t.Fatalf("after the claim expired: %+v, want record %d", late, got[1].ID)
	}
	_, err := store.DeliveryFinish(ctx(t), s, store.DeliveryFinishParams{ID: got[1].ID, Token: "h1", Node: "holder", StartedAt: t0,
		Now: t0.Add(2 * time.Minute), State: store.DeliveryDelivered})
	wantErr(t, err, store.ErrStale)
	// A failed attempt with a retry time is not due before it.
	next := t0.Add(10 * time.Minute)
	d = must[store.Delivery](t)(store.DeliveryFinish(ctx(t), s, store.DeliveryFinishParams{ID: got[1].ID, Token: "o3", Node: "other",
		StartedAt: t0, Now: t0.Add(2 * time.Minute), State: store.DeliveryPending, NextAt: next, Error: "connection refused"}))
	if d.State != store.DeliveryPending || d.Attempts != 1 || !d.NextAt.Equal(next) || d.LastError != "connection refused" || d.ClaimToken != "" {
		t.Fatalf("to retry: %+v", d)
	}
	if early := claim("holder", "h2", next.Add(-time.Second)); len(early) != 0 {
		t.Fatalf("claimed before its retry time: %+v", early)
	}
	if due := claim("holder", "h2", next); len(due) != 1 {
		t.Fatalf("not claimed at its retry time: %+v", due)
	}
	d = must[store.Delivery](t)(store.DeliveryFinish(ctx(t), s, store.DeliveryFinishParams{ID: got[1].ID, Token: "h2", Node: "holder",
		StartedAt: next, Now: next, State: store.DeliveryFailed, Error: "mkdir: permission denied"}))
	if d.State != store.DeliveryFailed || d.Attempts != 2 {
		t.Fatalf("failed: %+v", d)
	}
	full := must[store.Delivery](t)(s.DeliveryGet(ctx(t), d.ID))
	if len(full.History) != 2 || full.History[0].Node != "other" || full.History[0].Outcome != store.DeliveryPending ||
		full.History[1].Outcome != store.DeliveryFailed || full.History[1].Error != "mkdir: permission denied" {
		t.Fatalf("history: %+v", full.History)
	}
	evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: store.EventDeliveryFailed}))
	if len(evs) != 1 || evs[0].Data["key"] != d.Key() || evs[0].Data["run"] != float64(r.ID) {
		t.Fatalf("delivery.failed events: %+v", evs)
	}
	// Retried by hand: due now, with its budget of attempts afresh.
	_, err = s.DeliveryRetry(ctx(t), store.DeliveryRetryParams{ID: got[0].ID, Now: next})
	wantErr(t, err, store.ErrConflict) // delivered
	d = must[store.Delivery](t)(s.DeliveryRetry(ctx(t), store.DeliveryRetryParams{ID: d.ID, Now: next, By: "tester"}))
	if d.State != store.DeliveryPending || d.Tries() != 0 || d.Attempts != 2 || !d.NextAt.Equal(next) {
		t.Fatalf("retried: %+v", d)
	}
	_, err = s.DeliveryGet(ctx(t), 99999)
	wantErr(t, err, store.ErrNotFound)
}

// A node declared lost frees its claims at once, and a run that ends with it has its
// records.
func testDeliveryNodeLost(t *testing.T, s store.Store) {
	apply(t, s, deliverSpec("nl"))
	for _, id := range []string{"gone", "alive"} {
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: id, Mode: "standby", Capacity: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	done := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "nl", Now: t0})), "alive", "t1")
	must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: done.ID, Token: "t1", Now: t0, State: store.RunSucceeded}))
	now := time.Now()
	claimed := must[[]store.Delivery](t)(s.DeliveryClaim(ctx(t), store.DeliveryClaimParams{Node: "gone", Token: "g", Now: now,
		Until: now.Add(time.Hour), Handoff: 0}))
	if len(claimed) != 2 {
		t.Fatalf("claimed %d, want 2 (handoff 0)", len(claimed))
	}
	inFlight := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "nl", Now: t0})), "gone", "t2")
	time.Sleep(5 * time.Millisecond)
	res := must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "gone", Silence: time.Millisecond}))
	if !res.Lost || len(res.Failed) != 1 {
		t.Fatalf("NodeLose: %+v", res)
	}
	if e := entries(runDeliveries(t, s, inFlight.ID)); !slices.Equal(e, []int{1, 2}) {
		t.Fatalf("run failed with its node: entries %v, want [1 2]", e)
	}
	for _, d := range runDeliveries(t, s, done.ID) {
		if d.State != store.DeliveryPending || d.ClaimToken != "" {
			t.Fatalf("a lost node's claim was kept: %+v", d)
		}
	}
	// The lost holder's records go to anyone at once, handoff or not.
	got := must[[]store.Delivery](t)(s.DeliveryClaim(ctx(t), store.DeliveryClaimParams{Node: "alive", Token: "a", Now: time.Now(),
		Until: time.Now().Add(time.Hour), Handoff: time.Hour, Limit: 10}))
	if len(got) != 4 {
		t.Fatalf("claimed %d after the loss, want 4: %+v", len(got), got)
	}
}
