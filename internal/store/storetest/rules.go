package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Rules are applied all at once, listed, replaced and deleted; a new rule judges only
// the events after it was made.
func testRules(t *testing.T, s store.Store) {
	must[error](t)(nil, s.EventAppend(ctx(t), store.EventAppendParams{Type: "node.joined", Now: t0}))
	res := must[[]store.RuleApplyResult](t)(s.RuleApply(ctx(t), store.RuleApplyParams{Now: t0, Rules: []store.RuleDef{
		{Name: "b", Spec: []byte(`{"on":["node.lost"]}`)}, {Name: "a", Spec: []byte(`{"on":["run.failed"]}`)}}}))
	if len(res) != 2 || !res[0].Created || res[0].Rule.SinceEvent < 1 {
		t.Fatalf("apply: %+v, want two created after the first event", res)
	}
	res = must[[]store.RuleApplyResult](t)(s.RuleApply(ctx(t), store.RuleApplyParams{Now: t0.Add(time.Second), Rules: []store.RuleDef{
		{Name: "a", Spec: []byte(`{"on":["run.succeeded"]}`)}}}))
	if res[0].Created || string(res[0].Rule.Spec) != `{"on":["run.succeeded"]}` || !res[0].Rule.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("replace: %+v", res)
	}
	list := must[[]store.Rule](t)(s.RuleList(ctx(t)))
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("list: %+v", list)
	}
	if err := s.RuleDelete(ctx(t), "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RuleGet(ctx(t), "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
	if err := s.RuleDelete(ctx(t), "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
}

// The notifier's cursor moves by compare-and-set under the primary's epoch, with the
// notifications it records: each once per (rule, event, kind), with its delivery
// records when sent.
func testNotifyAdvance(t *testing.T, s store.Store) {
	l := must[store.Lease](t)(s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "p#1", Node: "p", TTL: time.Minute}))
	st := must[store.NotifyState](t)(s.NotifyState(ctx(t)))
	for i := range 3 {
		must[error](t)(nil, s.EventAppend(ctx(t), store.EventAppendParams{Type: "node.lost", Now: t0, Data: map[string]any{"node": i}}))
	}
	evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Follow: true, After: st.Cursor}))
	if len(evs) != 3 || evs[0].ID >= evs[1].ID || evs[0].ID <= st.Cursor {
		t.Fatalf("events after the cursor %d: %+v, want 3 oldest first", st.Cursor, evs)
	}
	notice := store.NotificationNew{Rule: "r", EventID: evs[0].ID, EventType: "node.lost", Kind: store.NoticeKind, Key: "0",
		State: store.NotificationSent, Subject: "s", Body: "b", Channels: []job.Deliver{{Email: []string{"a@example.com"}}, {Webhook: "https://h.example.com"}}}
	adv := store.NotifyAdvanceParams{Epoch: l.Epoch, Node: "p", From: st.Cursor, To: evs[0].ID, Now: t0, Notices: []store.NotificationNew{notice},
		Repeats: []store.Repeat{{Rule: "r", Key: "0", Since: t0, Until: t0.Add(time.Minute)}}}
	if _, err := s.NotifyAdvance(ctx(t), store.NotifyAdvanceParams{Epoch: l.Epoch + 1, From: st.Cursor, To: evs[0].ID, Now: t0}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("advance under another epoch: %v, want ErrFenced", err)
	}
	made := must[[]store.Notification](t)(s.NotifyAdvance(ctx(t), adv))
	if len(made) != 1 || made[0].ID == 0 {
		t.Fatalf("advance: %+v, want one notification", made)
	}
	if _, err := s.NotifyAdvance(ctx(t), adv); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("advance from a cursor that moved: %v, want ErrConflict", err)
	}
	// Offered again from the new cursor, the same notification is not made twice.
	adv.From, adv.To = evs[0].ID, evs[2].ID
	suppressed := store.NotificationNew{Rule: "r", EventID: evs[1].ID, EventType: "node.lost", Kind: store.NoticeKind, State: store.NotificationSuppressed}
	adv.Notices = append(adv.Notices, suppressed)
	adv.Repeats = []store.Repeat{{Rule: "r", Key: "0", Since: t0, Until: t0.Add(time.Minute), Suppressed: 1, FirstEvent: evs[1].ID, LastEvent: evs[1].ID}}
	made = must[[]store.Notification](t)(s.NotifyAdvance(ctx(t), adv))
	if len(made) != 1 || made[0].EventID != evs[1].ID {
		t.Fatalf("second advance made %+v, want only the suppressed one", made)
	}
	st = must[store.NotifyState](t)(s.NotifyState(ctx(t)))
	if st.Cursor != evs[2].ID || len(st.Repeats) != 1 || st.Repeats[0].Suppressed != 1 || !st.Repeats[0].Until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("state %+v", st)
	}
	all := must[[]store.Notification](t)(s.NotificationList(ctx(t), store.NotificationListParams{Rule: "r"}))
	if len(all) != 2 {
		t.Fatalf("notifications %+v, want 2", all)
	}
	n := must[store.Notification](t)(s.NotificationGet(ctx(t), all[1].ID))
	if len(n.Deliveries) != 2 || n.Deliveries[0].Notification != n.ID || n.Deliveries[0].RunID != 0 || n.Deliveries[1].Channel != job.ChannelWebhook {
		t.Fatalf("delivery records of the sent notification: %+v", n.Deliveries)
	}
	if n2 := must[store.Notification](t)(s.NotificationGet(ctx(t), all[0].ID)); len(n2.Deliveries) != 0 {
		t.Fatalf("a suppressed notification has delivery records: %+v", n2.Deliveries)
	}
	adv.From, adv.Notices, adv.Repeats = evs[2].ID, nil, []store.Repeat{{Rule: "r", Key: "0"}}
	must[[]store.Notification](t)(s.NotifyAdvance(ctx(t), adv))
	if st := must[store.NotifyState](t)(s.NotifyState(ctx(t))); len(st.Repeats) != 0 {
		t.Fatalf("a window removed is still there: %+v", st.Repeats)
	}
}

// A run's end raises its event once, in the transaction that ends it; a retried
// attempt raises run.retrying; a deduplicated event is recorded once.
func testRunEvents(t *testing.T, s store.Store) {
	sp := spec("ev")
	sp.Retries = 1
	apply(t, s, sp)
	r := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "ev", Now: t0})), "n1", "t1")
	retry := t0.Add(time.Second)
	must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t1", Now: t0, State: store.RunFailed, RetryAt: &retry}))
	r = startRun(t, s, must[store.Run](t)(s.RunGet(ctx(t), r.ID)), "n1", "t2")
	must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t2", Now: t0.Add(2 * time.Second), State: store.RunFailed, Reason: "exit 3"}))
	_, _ = store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t2", Now: t0.Add(3 * time.Second), State: store.RunFailed})
	count := func(typ string) []store.Event {
		return must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: typ}))
	}
	if got := count("run.retrying"); len(got) != 1 || got[0].Data["attempt"] != float64(1) {
		t.Fatalf("run.retrying events: %+v, want one for attempt 1", got)
	}
	failed := count("run.failed")
	if len(failed) != 1 || failed[0].Data["run"] != float64(r.ID) || failed[0].Data["job"] != "ev" || failed[0].Data["attempt"] != float64(2) {
		t.Fatalf("run.failed events: %+v, want one, of the last attempt", failed)
	}
	if got := count("job.applied"); len(got) != 1 || got[0].Data["job"] != "ev" {
		t.Fatalf("job.applied events: %+v", got)
	}
	for range 2 {
		must[error](t)(nil, s.EventAppend(ctx(t), store.EventAppendParams{Type: "run.late", Dedup: "run/1/late", Now: t0}))
	}
	if got := count("run.late"); len(got) != 1 {
		t.Fatalf("deduplicated events: %d, want 1", len(got))
	}
}

// Event ids commit in increasing order: a follower reading the events after the last
// id it saw, while writers append concurrently, misses none. (On PostgreSQL, sequence
// values taken in one order commit in another unless the engine orders them.)
func testEventsFollowable(t *testing.T, s store.Store) {
	const writers, each = 4, 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.EventAppend(ctx(t), store.EventAppendParams{Type: "node.joined", Now: t0, Data: map[string]any{"w": w, "i": i}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	var cursor int64
	follow := func() {
		evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Follow: true, After: cursor, Limit: 1000}))
		for _, e := range evs {
			seen[e.ID] = true
			cursor = e.ID
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		follow()
	}
	follow()
	all := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Limit: writers * each * 2}))
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
	for _, e := range all {
		if !seen[e.ID] {
			t.Fatalf("the follower skipped event %d (it saw %d of %d)", e.ID, len(seen), len(all))
		}
	}
}
