package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Effects in the transaction that causes them: each method that takes events records
// them exactly once with its change, and a change that is refused records none.

// event is one event of a test, by type.
func event(typ string) store.EventAppendParams {
	return store.EventAppendParams{Type: typ, Node: "a", Message: typ, Data: map[string]any{"node": "a"}, Now: t0}
}

// wantEvents fails unless exactly n events of type typ are recorded.
func wantEvents(t *testing.T, s store.Store, typ string, n int) {
	t.Helper()
	evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: typ}))
	if len(evs) != n {
		t.Fatalf("%d %s events, want %d: %+v", len(evs), typ, n, evs)
	}
}

// A node's claim records its node.joined; a claim refused (the id is another live
// process's) records nothing.
func testNodeClaimEvent(t *testing.T, s store.Store) {
	claim := func(holder, replace string) error {
		return s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: "a", Holder: holder, Mode: "standby"}, Replace: replace,
			Events: []store.EventAppendParams{event("node.joined")}})
	}
	must[error](t)(nil, claim("a#1", ""))
	wantEvents(t, s, "node.joined", 1)
	wantErr(t, claim("a#2", ""), store.ErrClaimed)
	wantEvents(t, s, "node.joined", 1)
	must[error](t)(nil, claim("a#2", "a#1"))
	wantEvents(t, s, "node.joined", 2)
}

// A heartbeat that records a mode records its event (a stopping node's node.stopping,
// node.stopped); the heartbeat of a process whose id another claimed since records
// neither the mode nor the event.
func testNodeHeartbeatEvent(t *testing.T, s store.Store) {
	must[error](t)(nil, s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: "a", Holder: "a#1", Mode: "standby"}}))
	beat := func(holder, mode, typ string) error {
		return s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: "a", Holder: holder, Mode: mode},
			Events: []store.EventAppendParams{event(typ)}})
	}
	must[error](t)(nil, beat("a#1", "draining", "node.stopping"))
	wantEvents(t, s, "node.stopping", 1)
	// Another process took the id over: the old one's stop is refused, and unrecorded.
	must[error](t)(nil, s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: "a", Holder: "a#2", Mode: "standby"}, Replace: "a#1"}))
	wantErr(t, beat("a#1", "stopped", "node.stopped"), store.ErrClaimed)
	wantEvents(t, s, "node.stopped", 0)
	if n := must[[]store.Node](t)(s.NodeList(ctx(t))); len(n) != 1 || n[0].Mode != "standby" {
		t.Fatalf("nodes %+v, want a standby of a#2", n)
	}
	must[error](t)(nil, beat("a#2", "stopped", "node.stopped"))
	wantEvents(t, s, "node.stopped", 1)
}

// A setting and its event (a node's node.weight) are one transaction; a write that
// fails records neither.
func testSettingEvent(t *testing.T, s store.Store) {
	key := store.SettingNodeWeightPrefix + "a"
	must[error](t)(nil, s.SettingSet(ctx(t), key, "2", t0, event("node.weight")))
	wantEvents(t, s, "node.weight", 1)
	if v := must[string](t)(s.SettingGet(ctx(t), key)); v != "2" {
		t.Fatalf("weight %q, want 2", v)
	}
	canceled, cancel := context.WithCancel(ctx(t))
	cancel()
	if err := s.SettingSet(canceled, key, "3", t0, event("node.weight")); err == nil {
		t.Fatal("a setting written under a canceled context: no error")
	}
	wantEvents(t, s, "node.weight", 1)
	if v := must[string](t)(s.SettingGet(ctx(t), key)); v != "2" {
		t.Fatalf("weight %q after a failed write, want 2", v)
	}
}

// A resignation records its event (primary.stepped_down); a resignation of a lease
// the holder no longer holds at its epoch is fenced and records nothing.
func testLeaseResignEvent(t *testing.T, s store.Store) {
	l := must[store.Lease](t)(acquire(t, s, "a#1", 50*time.Millisecond))
	resign := func(holder string, epoch int64) error {
		return s.LeaseResign(ctx(t), store.LeaseResignParams{Name: store.PrimaryLease, Holder: holder, Epoch: epoch, TTL: time.Minute,
			Events: []store.EventAppendParams{event("primary.stepped_down")}})
	}
	wantErr(t, resign("a#1", l.Epoch+1), store.ErrFenced)
	wantErr(t, resign("b#1", l.Epoch), store.ErrFenced)
	wantEvents(t, s, "primary.stepped_down", 0)
	must[error](t)(nil, resign("a#1", l.Epoch))
	wantEvents(t, s, "primary.stepped_down", 1)
	// Taken over by b: a's late resignation of its old epoch is fenced.
	b := acquireWhenFree(t, s, "b#1", time.Minute)
	if b.Epoch != l.Epoch+1 {
		t.Fatalf("b took epoch %d, want %d", b.Epoch, l.Epoch+1)
	}
	wantErr(t, resign("a#1", l.Epoch), store.ErrFenced)
	wantEvents(t, s, "primary.stepped_down", 1)
	if got := must[store.Lease](t)(s.LeaseGet(ctx(t), store.PrimaryLease)); got.Holder != "b#1" || !got.ExpiresAt.After(got.Now) {
		t.Fatalf("lease %+v after a fenced resignation, want b's and live", got)
	}
}

// A scheduler slot's lease records its slot.taken as the primary's records
// primary.changed: once, with the take; a slot held by another records nothing.
func testSlotTakenEvent(t *testing.T, s store.Store) {
	take := func(holder string) error {
		_, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.SlotLease(1), Holder: holder, Node: holder, TTL: time.Minute,
			Event: func(taken, _ store.Lease, _ []store.Hold) store.EventAppendParams {
				ev := event("slot.taken")
				ev.Data = map[string]any{"slot": 1, "epoch": taken.Epoch}
				return ev
			}})
		return err
	}
	must[error](t)(nil, take("a#1"))
	wantErr(t, take("b#1"), store.ErrLeaseHeld)
	evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: "slot.taken"}))
	if len(evs) != 1 || evs[0].Data["epoch"] != float64(1) {
		t.Fatalf("slot.taken events %+v, want one of epoch 1", evs)
	}
	if evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: "primary.changed"})); len(evs) != 0 {
		t.Fatalf("a slot's take recorded %+v", evs)
	}
}

// The sync sender's state and the events that report it are one transaction: a
// failure and its sync.failed, a pause and its sync.paused, a resume and its
// sync.resumed, a cursor and its sync.succeeded or sync.full; a write that fails
// records no event.
func testSyncSourceEvents(t *testing.T, s store.Store) {
	st := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t)))
	st.Failures, st.LastError, st.LastErrorAt = 1, "connection refused", t0
	must[error](t)(nil, s.SyncSourceSet(ctx(t), st, event("sync.failed")))
	wantEvents(t, s, "sync.failed", 1)
	must[error](t)(nil, s.SyncSourcePause(ctx(t), true, event("sync.paused")))
	wantEvents(t, s, "sync.paused", 1)
	must[error](t)(nil, s.SyncSourcePause(ctx(t), false, event("sync.resumed")))
	wantEvents(t, s, "sync.resumed", 1)
	st.Failures, st.Acked, st.LastOKAt = 0, 7, t0.Add(time.Second)
	must[error](t)(nil, s.SyncSourceSet(ctx(t), st, event("sync.succeeded"), event("sync.full")))
	wantEvents(t, s, "sync.succeeded", 1)
	wantEvents(t, s, "sync.full", 1)
	if got := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t))); got.Acked != 7 || got.Paused || got.Failures != 0 {
		t.Fatalf("sender state %+v", got)
	}
	canceled, cancel := context.WithCancel(ctx(t))
	cancel()
	st.Failures, st.Acked = 9, 8
	if err := s.SyncSourceSet(canceled, st, event("sync.failed")); err == nil {
		t.Fatal("sender state written under a canceled context: no error")
	}
	if err := s.SyncSourcePause(canceled, true, event("sync.paused")); err == nil {
		t.Fatal("sender paused under a canceled context: no error")
	}
	wantEvents(t, s, "sync.failed", 1)
	wantEvents(t, s, "sync.paused", 1)
	if got := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t))); got.Acked != 7 || got.Paused || got.Failures != 0 {
		t.Fatalf("sender state %+v after failed writes", got)
	}
}

// A loss's further events (what it did to the node's outputs) are recorded after its
// node.lost in its transaction, computed from its result; a fenced loss, or one of a
// node that is not silent, records none.
func testNodeLoseEvents(t *testing.T, s store.Store) {
	heartbeatNodes(t, s, "a")
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	lose := func(epoch int64, silence time.Duration) (store.NodeLoseResult, error) {
		return s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: epoch, Node: "a", Silence: silence, By: "p",
			Events: func(res store.NodeLoseResult) []store.EventAppendParams {
				ev := event("output.lost")
				ev.Data = map[string]any{"node": "a", "lost": res.Lost}
				return []store.EventAppendParams{ev}
			}})
	}
	_, err := lose(l.Epoch+1, 0)
	wantErr(t, err, store.ErrFenced)
	if res := must[store.NodeLoseResult](t)(lose(l.Epoch, time.Hour)); res.Lost {
		t.Fatalf("a node heard from within the silence lost: %+v", res)
	}
	wantEvents(t, s, "node.lost", 0)
	wantEvents(t, s, "output.lost", 0)
	time.Sleep(5 * time.Millisecond)
	if res := must[store.NodeLoseResult](t)(lose(l.Epoch, time.Millisecond)); !res.Lost {
		t.Fatalf("NodeLose = %+v, want lost", res)
	}
	var got []string
	for _, e := range must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Follow: true})) {
		got = append(got, e.Type)
	}
	if strings.Join(got, ",") != "node.lost,output.lost" {
		t.Fatalf("events %v, want node.lost then output.lost, once", got)
	}
}
