package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func testNodeLose(t *testing.T, s store.Store) {
	sp := spec("nl")
	sp.Retries = 1
	apply(t, s, sp, spec("once"))
	for _, id := range []string{"gone", "alive"} {
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: id, Mode: "standby", Capacity: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	r1 := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "nl", Now: t0})), "gone", "t1")
	r2 := startRun(t, s, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "once", Now: t0})), "gone", "t2")
	// Assigned but never started: re-queued without spending its attempt.
	r3 := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "once", Now: t0}))
	if n, err := s.RunAssign(ctx(t), store.RunAssignParams{Now: t0, Assignments: []store.Assignment{{RunID: r3.ID, Node: "gone", Token: "t4"}}}); err != nil || n != 1 {
		t.Fatalf("assign: %d %v", n, err)
	}
	// Not silent long enough: nothing happens.
	res := must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "gone", Silence: time.Hour}))
	if res.Lost {
		t.Fatalf("a node heard from just now was declared lost: %+v", res)
	}
	// A stale epoch changes nothing.
	_, err := s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch + 7, Node: "gone", Silence: 0})
	wantErr(t, err, store.ErrFenced)
	time.Sleep(5 * time.Millisecond) // the heartbeat must be older than a zero silence
	res = must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "gone", Silence: time.Millisecond}))
	if !res.Lost || len(res.Requeued) != 2 || len(res.Failed) != 1 || res.Failed[0] != r2.ID {
		t.Fatalf("NodeLose = %+v, want runs %d and %d re-queued and run %d failed", res, r1.ID, r3.ID, r2.ID)
	}
	if got := must[store.Run](t)(s.RunGet(ctx(t), r3.ID)); got.State != store.RunQueued || got.Attempt != 0 {
		t.Fatalf("never-started run after its node was lost: %+v, want queued with no attempt spent", got)
	}
	if again := must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "gone", Silence: time.Millisecond})); again.Lost {
		t.Fatal("a lost node was declared lost twice")
	}
	got := must[store.Run](t)(s.RunGet(ctx(t), r1.ID))
	if got.State != store.RunQueued || got.Node != "" || got.Token != "" || got.Attempt != 1 {
		t.Fatalf("re-queued run: %+v", got)
	}
	// The lost node's late result for its old attempt is refused.
	_, err = store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r1.ID, Token: "t1", Now: time.Now(), State: store.RunSucceeded})
	wantErr(t, err, store.ErrStale)
	if got := startRun(t, s, got, "alive", "t3"); got.Attempt != 2 {
		t.Fatalf("next attempt numbered %d, want 2", got.Attempt)
	}
	nodes := must[[]store.Node](t)(s.NodeList(ctx(t)))
	for _, n := range nodes {
		if n.ID == "gone" && n.Mode != "lost" {
			t.Fatalf("lost node shows mode %q", n.Mode)
		}
	}
}

func testLeaseHandover(t *testing.T, s store.Store) {
	a := must[store.Lease](t)(acquire(t, s, "a#1", time.Minute))
	// A holder known dead is taken over at once, with a new epoch.
	b, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "b#1", Node: "b", TakeFrom: "a#1", TTL: time.Minute})
	if err != nil || b.Epoch != a.Epoch+1 || b.Holder != "b#1" {
		t.Fatalf("take over from a dead holder: %+v %v", b, err)
	}
	// TakeFrom naming someone else does not take a live lease.
	_, err = s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "c#1", Node: "c", TakeFrom: "a#1", TTL: time.Minute})
	wantErr(t, err, store.ErrLeaseHeld)
	// A planned handover reserves the lease for the successor.
	if err := s.LeaseResign(ctx(t), store.LeaseResignParams{Name: store.PrimaryLease, Holder: "b#1", Epoch: b.Epoch, Successor: "c"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "d#1", Node: "d", TTL: time.Minute})
	wantErr(t, err, store.ErrLeaseHeld)
	c, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "c#1", Node: "c", TTL: time.Minute})
	if err != nil || c.Epoch != b.Epoch+1 || c.Successor != "" {
		t.Fatalf("successor acquire: %+v %v", c, err)
	}
	got := must[store.Lease](t)(s.LeaseGet(ctx(t), store.PrimaryLease))
	if got.Now.IsZero() || !got.ExpiresAt.After(got.Now) {
		t.Fatalf("LeaseGet: %+v, want the repository's clock in Now", got)
	}
}

func testLiveness(t *testing.T, s store.Store) {
	lv, ok := s.(store.Liveness)
	if !ok {
		t.Fatal("engine has no liveness locks")
	}
	release, err := lv.LivenessHold(ctx(t), "h#1")
	if err != nil {
		t.Fatal(err)
	}
	if dead := must[bool](t)(lv.LivenessDead(ctx(t), "h#1")); dead {
		t.Fatal("a held liveness lock reads as dead")
	}
	// An engine may read a free lock as alive for a while after its server started (a
	// restart frees every lock; live holders need a moment to take theirs again): wait
	// for "dead" a little longer than that.
	eventuallyDead := func(holder, what string) {
		deadline := time.Now().Add(10 * time.Second)
		for !must[bool](t)(lv.LivenessDead(ctx(t), holder)) {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	eventuallyDead("never#1", "a holder that never held its lock reads as alive")
	if dead := must[bool](t)(lv.LivenessDead(ctx(t), "h#1")); dead {
		t.Fatal("a held liveness lock reads as dead")
	}
	release()
	eventuallyDead("h#1", "a released liveness lock reads as alive")
}

// The lease is judged by the repository's clock: a caller whose clock is hours off
// neither takes a live lease nor keeps an expired one.
func testLeaseRepositoryClock(t *testing.T, s store.Store) {
	now := time.Now()
	a, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.ExpiresAt.Sub(now); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("lease expires %s from now, want about a minute (repository clock)", d)
	}
	_, err = s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "b", TTL: time.Minute})
	wantErr(t, err, store.ErrLeaseHeld)
	if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: "skewed"}}); err != nil {
		t.Fatal(err)
	}
	nodes := must[[]store.Node](t)(s.NodeList(ctx(t)))
	if len(nodes) != 1 || nodes[0].HeartbeatAt.Sub(now).Abs() > 10*time.Second {
		t.Fatalf("heartbeat stamped %v, want the repository's clock (about %v)", nodes[0].HeartbeatAt, now)
	}
}

// A draining node is given no work, and releases what it was given but did not start:
// those runs are queued again without spending an attempt. Releasing another node's
// runs is the primary's write and is fenced.
func testRunRelease(t *testing.T, s store.Store) {
	apply(t, s, spec("rel"))
	beat := func(id, mode string) {
		t.Helper()
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: id, Mode: mode, Capacity: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	beat("leaving", "standby")
	beat("staying", "standby")
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	var runs []store.Run
	for range 3 {
		runs = append(runs, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "rel", Now: t0})))
	}
	started := startRun(t, s, runs[0], "leaving", "t0")
	if n, err := s.RunAssign(ctx(t), store.RunAssignParams{Epoch: l.Epoch, Now: t0,
		Assignments: []store.Assignment{{RunID: runs[1].ID, Node: "leaving", Token: "t1"}}}); err != nil || n != 1 {
		t.Fatalf("assign: %d %v", n, err)
	}
	beat("leaving", "draining")
	// Given nothing more once it is draining; the other node still is.
	n, err := s.RunAssign(ctx(t), store.RunAssignParams{Epoch: l.Epoch, Now: t0, Assignments: []store.Assignment{
		{RunID: runs[2].ID, Node: "leaving", Token: "t2"}, {RunID: runs[2].ID, Node: "staying", Token: "t3"}}})
	if err != nil || n != 1 {
		t.Fatalf("assign to a draining node and a standby: %d %v, want 1 assignment (to the standby)", n, err)
	}
	if got := must[store.Run](t)(s.RunGet(ctx(t), runs[2].ID)); got.Node != "staying" {
		t.Fatalf("run assigned to %q, want staying", got.Node)
	}
	// Fenced when another node releases (a stale epoch changes nothing).
	_, err = s.RunRelease(ctx(t), store.RunReleaseParams{Epoch: l.Epoch + 1, Node: "leaving", Now: time.Now(), Reason: "x"})
	wantErr(t, err, store.ErrFenced)
	ids := must[[]int64](t)(s.RunRelease(ctx(t), store.RunReleaseParams{Node: "leaving", Now: time.Now(), Reason: "node leaving stopped"}))
	if len(ids) != 1 || ids[0] != runs[1].ID {
		t.Fatalf("released %v, want only the assigned, unstarted run %d", ids, runs[1].ID)
	}
	got := must[store.Run](t)(s.RunGet(ctx(t), runs[1].ID))
	if got.State != store.RunQueued || got.Node != "" || got.Token != "" || got.Attempt != 0 || got.Reason != "node leaving stopped" {
		t.Fatalf("released run: %+v, want queued, unassigned, no attempt spent, with the reason", got)
	}
	if got := must[store.Run](t)(s.RunGet(ctx(t), started.ID)); got.State != store.RunRunning {
		t.Fatalf("a running run was released: %+v", got)
	}
	// Its old token is refused.
	_, err = store.RunStart(ctx(t), s, store.RunStartParams{RunID: runs[1].ID, Token: "t1", Now: time.Now()})
	wantErr(t, err, store.ErrStale)
	if again := must[[]int64](t)(s.RunRelease(ctx(t), store.RunReleaseParams{Epoch: l.Epoch, Node: "leaving", Now: time.Now()})); len(again) != 0 {
		t.Fatalf("released %v twice", again)
	}
}

// A primary frozen past its lease and resumed after another took over tries every write
// its role makes, under its old epoch: firing a due occurrence, assigning a queued run,
// declaring a silent node lost, taking back a stopped node's runs. Each is refused, and
// nothing in the repository changed.
func testDeposedPrimaryChangesNothing(t *testing.T, s store.Store) {
	apply(t, s, spec("due", "@every 1m"), spec("q"))
	sc := initAt(t, s, "due", t0)[0]
	beat := func(id, mode string) {
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: id, Mode: mode, Capacity: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	beat("gone", "standby")
	beat("leaving", "standby")
	old := must[store.Lease](t)(acquire(t, s, "old", 50*time.Millisecond))
	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "q", Count: 3, Now: t0}))
	if n, err := s.RunAssign(ctx(t), store.RunAssignParams{Epoch: old.Epoch, Now: t0, Assignments: []store.Assignment{
		{RunID: runs[0].ID, Node: "gone", Token: "g"}, {RunID: runs[1].ID, Node: "leaving", Token: "l"}}}); err != nil || n != 2 {
		t.Fatalf("assign under the live epoch: %d %v", n, err)
	}
	beat("leaving", "stopped") // it stopped with a run still assigned to it
	snapshot := func() string {
		rs := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Limit: 100}))
		ns := must[[]store.Node](t)(s.NodeList(ctx(t)))
		due := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.Add(time.Hour), Limit: 10}))
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "run %d %s %s %s %d;", r.ID, r.State, r.Node, r.Token, r.Attempt)
		}
		for _, n := range ns {
			fmt.Fprintf(&b, "node %s %s;", n.ID, n.Mode)
		}
		for _, d := range due {
			fmt.Fprintf(&b, "schedule %d %v;", d.ID, d.NextFireAt)
		}
		return b.String()
	}
	// The old primary froze; its lease lapsed; another took over.
	cur := acquireWhenFree(t, s, "new", time.Minute)
	before := snapshot()
	next := t0.Add(time.Minute)
	_, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Epoch: old.Epoch, Now: t0,
		Items: []store.FireItem{{ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{t0}}}})
	wantErr(t, err, store.ErrFenced)
	_, err = s.RunAssign(ctx(t), store.RunAssignParams{Epoch: old.Epoch, Now: t0, Assignments: []store.Assignment{{RunID: runs[2].ID, Node: "old", Token: "o"}}})
	wantErr(t, err, store.ErrFenced)
	_, err = s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: old.Epoch, Node: "gone", Silence: 0})
	wantErr(t, err, store.ErrFenced)
	_, err = s.RunRelease(ctx(t), store.RunReleaseParams{Epoch: old.Epoch, Node: "leaving", Now: time.Now(), Reason: "stopped"})
	wantErr(t, err, store.ErrFenced)
	if after := snapshot(); after != before {
		t.Fatalf("a deposed primary changed the repository:\nbefore %s\nafter  %s", before, after)
	}
	// The current primary's writes go through.
	if res := fire(t, s, cur.Epoch, sc, t0); !res.Applied {
		t.Fatalf("fire under the current epoch: %+v", res)
	}
}

// A lease taken with an Event records it in the same transaction, told the lease as
// taken and as it was, and the holds; a take that fails records nothing.
func testLeaseAcquireEvent(t *testing.T, s store.Store) {
	if err := s.HoldSet(ctx(t), store.Hold{Target: store.HoldPrimary, Kind: store.HoldSuspend, By: "op", At: t0}); err != nil {
		t.Fatal(err)
	}
	var told []string
	event := func(holder string) func(taken, before store.Lease, holds []store.Hold) store.EventAppendParams {
		return func(taken, before store.Lease, holds []store.Hold) store.EventAppendParams {
			told = append(told, fmt.Sprintf("%s took epoch %d from %q with %d holds", taken.Holder, taken.Epoch, before.Holder, len(holds)))
			return store.EventAppendParams{Type: "primary.changed", Node: holder, Message: holder + " became primary",
				Data: map[string]any{"epoch": taken.Epoch, "suspended": len(holds) > 0}}
		}
	}
	if _, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "a#1", Node: "a",
		TTL: time.Minute, Event: event("a")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "b#1", Node: "b",
		TTL: time.Minute, Event: event("b")})
	if !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("second acquire: %v, want ErrLeaseHeld", err)
	}
	evs := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: "primary.changed"}))
	if len(evs) != 1 || evs[0].Node != "a" || evs[0].Data["suspended"] != true {
		t.Fatalf("events %+v, want one primary.changed of a, suspended", evs)
	}
	if want := `a#1 took epoch 1 from "" with 1 holds`; len(told) < 1 || told[0] != want {
		t.Fatalf("Event told %q, want %q first", told, want)
	}
}

// Runs given to a node while it is being declared lost are never left on it: each
// assignment either sees the node lost and skips it, or commits before the loss reads
// the node's runs and is re-queued by it.
func testAssignRacesLose(t *testing.T, s store.Store) {
	sp := spec("race")
	sp.Retries = 2
	apply(t, s, sp)
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	for round := range 20 {
		node, holder := fmt.Sprintf("x%d", round), fmt.Sprintf("x%d#1", round)
		if err := s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: node, Holder: holder, Mode: "worker", Capacity: 100}}); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for range 30 {
			ids = append(ids, must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "race", Now: t0})).ID)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i, id := range ids {
				if _, err := s.RunAssign(ctx(t), store.RunAssignParams{Epoch: l.Epoch, Now: t0, Start: i%2 == 0,
					Assignments: []store.Assignment{{RunID: id, Node: node, Token: fmt.Sprintf("t%d", id)}}}); err != nil {
					t.Errorf("assign run %d: %v", id, err)
				}
			}
		}()
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		if _, err := s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: node, Silence: time.Hour, Dead: holder}); err != nil {
			t.Fatal(err)
		}
		<-done
		for _, id := range ids {
			if r := must[store.Run](t)(s.RunGet(ctx(t), id)); r.Node == node && (r.State == store.RunAssigned || r.State == store.RunRunning) {
				t.Fatalf("round %d: run %d left %s on node %s after it was declared lost", round, id, r.State, node)
			}
		}
	}
}
