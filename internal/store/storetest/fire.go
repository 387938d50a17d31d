package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

func testFireExactlyOnce(t *testing.T, s store.Store) {
	apply(t, s, spec("f", "@every 1m"))
	sc := initAt(t, s, "f", t0)[0]
	res := fire(t, s, 0, sc, t0)
	if !res.Applied || len(res.Runs) != 1 || res.Runs[0].State != store.RunQueued || !res.Runs[0].ScheduledAt.Equal(t0) {
		t.Fatalf("first fire: %+v", res)
	}
	// The same expected next fire time again: the schedule has moved on, nothing happens.
	if res := fire(t, s, 0, sc, t0); res.Applied || len(res.Runs) != 0 {
		t.Fatalf("second fire of the same time: %+v", res)
	}
	if n := countRuns(t, s, "f"); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
	next := must[store.Job](t)(s.JobGet(ctx(t), "f")).Schedules[0].NextFireAt
	if !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next fire = %v, want %v", next, t0.Add(time.Minute))
	}
}

func testFireConcurrent(t *testing.T, s store.Store) {
	apply(t, s, spec("c", "@every 1m"))
	sc := initAt(t, s, "c", t0)[0]
	applied := make([]bool, 8)
	testConcurrently(8, func(i int) {
		next := t0.Add(time.Minute)
		res, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Now: t0,
			Items: []store.FireItem{{ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{t0}}}})
		if err != nil {
			t.Errorf("firer %d: %v", i, err)
			return
		}
		applied[i] = res[0].Applied
	})
	n := 0
	for _, a := range applied {
		if a {
			n++
		}
	}
	if n != 1 || countRuns(t, s, "c") != 1 {
		t.Fatalf("%d firers applied, %d runs; want exactly one of each", n, countRuns(t, s, "c"))
	}
}

func testFireRecords(t *testing.T, s store.Store) {
	apply(t, s, spec("r", "@every 1m"))
	sc := initAt(t, s, "r", t0)[0]
	now := t0.Add(10 * time.Minute)
	next := now.Add(time.Minute)
	res, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Now: now, Items: []store.FireItem{{
		ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{now},
		Records: []store.Record{
			{State: store.RunMissed, First: t0, Last: t0.Add(8 * time.Minute), Count: 9, Reason: "missed"},
			{State: store.RunSkipped, First: t0.Add(9 * time.Minute), Last: t0.Add(9 * time.Minute), Count: 1, Reason: "blackout"},
		}}}})
	if err != nil || !res[0].Applied {
		t.Fatalf("fire: %v %+v", err, res)
	}
	runs := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Job: "r"}))
	byState := map[store.RunState]store.Run{}
	for _, r := range runs {
		byState[r.State] = r
	}
	m := byState[store.RunMissed]
	if m.Occurrences != 9 || !m.ScheduledAt.Equal(t0) || !m.ScheduledUntil.Equal(t0.Add(8*time.Minute)) || m.FinishedAt == nil {
		t.Fatalf("missed record: %+v", m)
	}
	if byState[store.RunSkipped].Occurrences != 1 || byState[store.RunQueued].ID == 0 {
		t.Fatalf("runs: %+v", runs)
	}
}

func testFireFenced(t *testing.T, s store.Store) {
	apply(t, s, spec("x", "@every 1m"))
	sc := initAt(t, s, "x", t0)[0]
	l1 := must[store.Lease](t)(acquire(t, s, "a", 50*time.Millisecond))
	// b takes over after a's lease expired: a's epoch is stale.
	l2 := acquireWhenFree(t, s, "b", time.Minute)
	if l2.Epoch != l1.Epoch+1 {
		t.Fatalf("epoch %d after takeover, want %d", l2.Epoch, l1.Epoch+1)
	}
	next := t0.Add(time.Minute)
	_, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Epoch: l1.Epoch, Now: t0,
		Items: []store.FireItem{{ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{t0}}}})
	wantErr(t, err, store.ErrFenced)
	run := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "x", Now: t0}))
	_, err = s.RunAssign(ctx(t), store.RunAssignParams{Epoch: l1.Epoch, Now: t0, Assignments: []store.Assignment{{RunID: run.ID, Node: "a", Token: "t"}}})
	wantErr(t, err, store.ErrFenced)
	if got := must[store.Run](t)(s.RunGet(ctx(t), run.ID)); got.State != store.RunQueued {
		t.Fatalf("fenced assign changed the run: %+v", got)
	}
	if n := countRuns(t, s, "x"); n != 1 {
		t.Fatalf("fenced fire created runs: %d runs", n)
	}
	// The current epoch goes through.
	if res := fire(t, s, l2.Epoch, sc, t0); !res.Applied {
		t.Fatalf("fire with the current epoch: %+v", res)
	}
}

func testOverlapPolicies(t *testing.T, s store.Store) {
	mk := func(name, overlap string) job.Spec {
		sp := spec(name)
		sp.Overlap = overlap
		return sp
	}
	apply(t, s, mk("forbid", job.OverlapForbid), mk("replace", job.OverlapReplace), mk("allow", job.OverlapAllow))
	create := func(name string) store.Run {
		return must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: name, Now: t0}))
	}
	first := create("forbid")
	if second := create("forbid"); second.State != store.RunSkipped || second.Reason == "" {
		t.Fatalf("forbid: second run %+v, want skipped with a reason", second)
	}
	_ = first
	r1 := create("replace")
	startRun(t, s, r1, "n1", "tok1")
	r2 := create("replace")
	r3 := create("replace") // replaces the queued r2 at once and asks r1 to stop
	if got := must[store.Run](t)(s.RunGet(ctx(t), r1.ID)); !got.CancelRequested || got.State != store.RunRunning {
		t.Fatalf("replace: running run %+v, want cancel requested", got)
	}
	if got := must[store.Run](t)(s.RunGet(ctx(t), r2.ID)); got.State != store.RunCanceled {
		t.Fatalf("replace: queued run %+v, want canceled", got)
	}
	if r3.State != store.RunQueued {
		t.Fatalf("replace: new run %+v", r3)
	}
	create("allow")
	if a := create("allow"); a.State != store.RunQueued {
		t.Fatalf("allow: %+v", a)
	}
}

// startRun assigns and starts a queued run.
func startRun(t *testing.T, s store.Store, r store.Run, node, token string) store.Run {
	t.Helper()
	n, err := s.RunAssign(ctx(t), store.RunAssignParams{Now: t0, Assignments: []store.Assignment{{RunID: r.ID, Node: node, Token: token}}})
	if err != nil || n != 1 {
		t.Fatalf("assign run %d: n=%d err=%v", r.ID, n, err)
	}
	return must[store.Run](t)(store.RunStart(ctx(t), s, store.RunStartParams{RunID: r.ID, Token: token, Now: t0}))
}

func testDispatchQueueOverlap(t *testing.T, s store.Store) {
	sp := spec("q")
	sp.Overlap = job.OverlapQueue
	apply(t, s, sp)
	r1 := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "q", Now: t0}))
	must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "q", Now: t0}))
	c := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: t0}))
	if len(c) != 2 || c[0].Active != 0 || c[0].Spec.Overlap != job.OverlapQueue {
		t.Fatalf("candidates: %+v", c)
	}
	startRun(t, s, r1, "n", "t")
	c = must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: t0}))
	if len(c) != 1 || c[0].Active != 1 {
		t.Fatalf("candidates while one runs: %+v", c)
	}
	// Not before: a run waiting for its retry time is not dispatchable yet.
	if _, err := store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r1.ID, Token: "t", Now: t0, State: store.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func testRunLifecycle(t *testing.T, s store.Store) {
	apply(t, s, spec("l"))
	r := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "l", Now: t0}))
	if r.Trigger != store.TriggerManual || r.ScheduledAt != nil || r.MaxAttempts != 1 {
		t.Fatalf("on-demand run: %+v", r)
	}
	r = startRun(t, s, r, "n1", "tok")
	if r.State != store.RunRunning || r.Attempt != 1 || r.Node != "n1" || r.StartedAt == nil {
		t.Fatalf("started run: %+v", r)
	}
	if got := must[[]store.Run](t)(s.RunListForNode(ctx(t), "n1")); len(got) != 1 {
		t.Fatalf("RunListForNode = %d runs", len(got))
	}
	must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "l", Now: t0}))
	counts := must[[]store.RunCount](t)(s.RunCounts(ctx(t)))
	want := []store.RunCount{{Node: "", State: store.RunQueued, Count: 1}, {Node: "n1", State: store.RunRunning, Count: 1}}
	if len(counts) != 2 || counts[0] != want[0] || counts[1] != want[1] {
		t.Fatalf("RunCounts = %+v, want %+v", counts, want)
	}
	// A stale token changes nothing.
	_, err := store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "old", Now: t0, State: store.RunFailed})
	wantErr(t, err, store.ErrStale)
	code := 0
	r = must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "tok", Now: t0.Add(time.Second),
		State: store.RunSucceeded, ExitCode: &code, Stdout: []byte("hello"), Outputs: []store.Output{{Name: "a.csv", Size: 3, SHA256: "abc"}}}))
	if r.State != store.RunSucceeded || r.FinishedAt == nil || *r.ExitCode != 0 {
		t.Fatalf("finished run: %+v", r)
	}
	full := must[store.Run](t)(s.RunGet(ctx(t), r.ID))
	if string(full.Stdout) != "hello" {
		t.Fatalf("stdout = %q", full.Stdout)
	}
	outs := must[[]store.Output](t)(s.OutputList(ctx(t), r.ID))
	if len(outs) != 1 || outs[0].Name != "a.csv" || outs[0].Node != "n1" || outs[0].Attempt != 1 {
		t.Fatalf("outputs: %+v", outs)
	}
	// A second completion is refused: one accepted completion per attempt.
	_, err = store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "tok", Now: t0, State: store.RunFailed})
	wantErr(t, err, store.ErrStale)
	_, err = s.RunGet(ctx(t), 999999)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RunCreate(ctx(t), store.RunCreateParams{Job: "nope", Now: t0})
	wantErr(t, err, store.ErrNotFound)
}

func testRunRetry(t *testing.T, s store.Store) {
	sp := spec("rt")
	sp.Retries = 1
	apply(t, s, sp)
	r := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "rt", Now: t0}))
	startRun(t, s, r, "n", "a1")
	retryAt := t0.Add(time.Minute)
	code := 1
	r = must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "a1", Now: t0, State: store.RunFailed, ExitCode: &code, Reason: "exit status 1", RetryAt: &retryAt}))
	if r.State != store.RunQueued || !r.NotBefore.Equal(retryAt) || r.Attempt != 1 {
		t.Fatalf("after a failed first attempt: %+v, want queued for a retry", r)
	}
	if c := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: t0})); len(c) != 0 {
		t.Fatalf("retry dispatchable before its time: %+v", c)
	}
	if c := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: retryAt})); len(c) != 1 {
		t.Fatalf("retry not dispatchable at its time: %+v", c)
	}
	r = startRun(t, s, r, "n2", "a2")
	if r.Attempt != 2 {
		t.Fatalf("second attempt numbered %d", r.Attempt)
	}
	// The first attempt's token is now stale.
	_, err := store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "a1", Now: t0, State: store.RunSucceeded})
	wantErr(t, err, store.ErrStale)
	r = must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "a2", Now: t0, State: store.RunFailed, RetryAt: &retryAt}))
	if r.State != store.RunFailed {
		t.Fatalf("attempts exhausted: %+v, want failed", r)
	}
}

func testRunCancel(t *testing.T, s store.Store) {
	apply(t, s, spec("k"))
	q := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "k", Now: t0}))
	if got := must[store.Run](t)(s.RunCancel(ctx(t), store.RunCancelParams{ID: q.ID, Now: t0})); got.State != store.RunCanceled {
		t.Fatalf("cancel queued: %+v", got)
	}
	_, err := s.RunCancel(ctx(t), store.RunCancelParams{ID: q.ID, Now: t0})
	wantErr(t, err, store.ErrConflict)
	r := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "k", Now: t0}))
	startRun(t, s, r, "n", "t")
	got := must[store.Run](t)(s.RunCancel(ctx(t), store.RunCancelParams{ID: r.ID, Now: t0}))
	if got.State != store.RunRunning || !got.CancelRequested {
		t.Fatalf("cancel running: %+v, want running with cancel requested", got)
	}
	retry := t0
	got = must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t", Now: t0, State: store.RunFailed, RetryAt: &retry}))
	if got.State != store.RunFailed {
		t.Fatalf("a canceled run was retried: %+v", got)
	}
	_, err = s.RunCancel(ctx(t), store.RunCancelParams{ID: 424242, Now: t0})
	wantErr(t, err, store.ErrNotFound)
}

func testRunListFilters(t *testing.T, s store.Store) {
	apply(t, s, spec("a"), spec("b"))
	for i := range 5 {
		j := "a"
		if i%2 == 1 {
			j = "b"
		}
		must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: j, Now: t0}))
	}
	all := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{}))
	if len(all) != 5 || all[0].ID < all[4].ID {
		t.Fatalf("RunList: %d runs, newest first expected", len(all))
	}
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Job: "b"})); len(got) != 2 {
		t.Fatalf("job filter: %d", len(got))
	}
	must[store.Run](t)(s.RunCancel(ctx(t), store.RunCancelParams{ID: all[0].ID, Now: t0}))
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{States: []store.RunState{store.RunCanceled}})); len(got) != 1 {
		t.Fatalf("state filter: %d", len(got))
	}
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Limit: 2, BeforeID: all[1].ID})); len(got) != 2 || got[0].ID != all[2].ID {
		t.Fatalf("paging: %+v", got)
	}
	// By node, and by creation time (inclusive bounds).
	startRun(t, s, all[2], "n2", "tok")
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Node: "n2"})); len(got) != 1 || got[0].ID != all[2].ID {
		t.Fatalf("node filter: %+v", got)
	}
	later := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "a", Now: t0.Add(time.Hour)}))
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{From: t0.Add(time.Hour)})); len(got) != 1 || got[0].ID != later.ID {
		t.Fatalf("from filter: %+v", got)
	}
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Until: t0})); len(got) != 5 {
		t.Fatalf("until filter: %d runs, want 5", len(got))
	}
	if got := must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{From: t0.Add(time.Minute), Until: t0.Add(2 * time.Hour), Job: "b"})); len(got) != 0 {
		t.Fatalf("from, until and job: %+v", got)
	}
}

// Leases are judged by the engine's clock (the database's where it has one), so these
// tests use real time and short TTLs rather than a fixed instant.
func acquire(t *testing.T, s store.Store, holder string, ttl time.Duration) (store.Lease, error) {
	t.Helper()
	return s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: holder, TTL: ttl})
}

// acquireWhenFree polls until holder gets the lease (the current one expires).
func acquireWhenFree(t *testing.T, s store.Store, holder string, ttl time.Duration) store.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := acquire(t, s, holder, ttl)
		if err == nil {
			return l
		}
		if !errors.Is(err, store.ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("acquire for %s: %v", holder, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLease(t *testing.T, s store.Store) {
	_, err := s.LeaseGet(ctx(t), store.PrimaryLease)
	wantErr(t, err, store.ErrNotFound)
	before := time.Now()
	a := must[store.Lease](t)(acquire(t, s, "a", time.Minute))
	if a.Epoch != 1 || a.Holder != "a" || a.ExpiresAt.Before(before.Add(50*time.Second)) || a.ExpiresAt.After(before.Add(70*time.Second)) {
		t.Fatalf("first acquire: %+v, want epoch 1 expiring in about a minute", a)
	}
	_, err = acquire(t, s, "b", time.Minute)
	wantErr(t, err, store.ErrLeaseHeld)
	if again := must[store.Lease](t)(acquire(t, s, "a", time.Minute)); again.Epoch != 1 {
		t.Fatalf("holder re-acquire changed the epoch: %+v", again)
	}
	r := must[store.Lease](t)(s.LeaseRenew(ctx(t), store.LeaseRenewParams{Name: store.PrimaryLease, Holder: "a", Epoch: 1, TTL: 2 * time.Minute}))
	if !r.ExpiresAt.After(a.ExpiresAt.Add(30 * time.Second)) {
		t.Fatalf("renewed lease: %+v (was %+v)", r, a)
	}
	_, err = s.LeaseRenew(ctx(t), store.LeaseRenewParams{Name: store.PrimaryLease, Holder: "b", Epoch: 1, TTL: time.Second})
	wantErr(t, err, store.ErrFenced)
	if err := s.LeaseResign(ctx(t), store.LeaseResignParams{Name: store.PrimaryLease, Holder: "a", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	// Resigned: free at once, the epoch grows on the change of holder.
	b := must[store.Lease](t)(acquire(t, s, "b", 100*time.Millisecond))
	if b.Epoch != 2 || b.Holder != "b" {
		t.Fatalf("acquire after resign: %+v", b)
	}
	_, err = s.LeaseRenew(ctx(t), store.LeaseRenewParams{Name: store.PrimaryLease, Holder: "a", Epoch: 1, TTL: time.Second})
	wantErr(t, err, store.ErrFenced)
	// Expired: exactly one of several concurrent acquirers wins.
	for {
		l := must[store.Lease](t)(s.LeaseGet(ctx(t), store.PrimaryLease))
		if time.Now().After(l.ExpiresAt.Add(50 * time.Millisecond)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wins := make([]bool, 6)
	testConcurrently(6, func(i int) {
		_, err := acquire(t, s, name("c", i), time.Minute)
		wins[i] = err == nil
		if err != nil && !errors.Is(err, store.ErrLeaseHeld) {
			t.Errorf("acquirer %d: %v", i, err)
		}
	})
	n := 0
	for _, w := range wins {
		if w {
			n++
		}
	}
	if l := must[store.Lease](t)(s.LeaseGet(ctx(t), store.PrimaryLease)); n != 1 || l.Epoch != 3 {
		t.Fatalf("%d concurrent acquirers won, epoch %d; want 1 and 3", n, l.Epoch)
	}
}

func testNodesAndEvents(t *testing.T, s store.Store) {
	n := store.Node{ID: "n1", Address: "127.0.0.1:8200", Mode: "primary", Capacity: 4, Running: 1, Tags: []string{"a"}, StartedAt: t0, Version: "0.4.0"}
	if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: n}); err != nil {
		t.Fatal(err)
	}
	n.Running = 2
	if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: n}); err != nil {
		t.Fatal(err)
	}
	// Heartbeats are stamped by the engine's clock (the database's where it has one).
	nodes := must[[]store.Node](t)(s.NodeList(ctx(t)))
	if len(nodes) != 1 || nodes[0].Running != 2 || time.Since(nodes[0].HeartbeatAt).Abs() > 5*time.Second || nodes[0].Tags[0] != "a" ||
		nodes[0].Version != "0.4.0" || !nodes[0].StartedAt.Equal(t0) {
		t.Fatalf("nodes: %+v", nodes)
	}
	for _, typ := range []string{"node.joined", "primary.changed", "node.joined"} {
		if err := s.EventAppend(ctx(t), store.EventAppendParams{Type: typ, Node: "n1", Message: typ, Data: map[string]any{"epoch": 1}, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	ev := must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Type: "node.joined"}))
	if len(ev) != 2 || ev[0].ID < ev[1].ID || ev[0].Data["epoch"] != float64(1) {
		t.Fatalf("events: %+v", ev)
	}
}
