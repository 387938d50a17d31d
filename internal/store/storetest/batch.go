package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Creating many runs at once: the same runs, one transaction, overlap applied in turn;
// more runs than one statement carries.
func testRunCreateBatch(t *testing.T, s store.Store) {
	forbid, replace := spec("bf"), spec("br")
	forbid.Overlap, replace.Overlap = job.OverlapForbid, job.OverlapReplace
	apply(t, s, spec("ba"), forbid, replace)

	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "ba", Count: 1203, Now: t0}))
	if len(runs) != 1203 {
		t.Fatalf("created %d runs, want 1203", len(runs))
	}
	for i, r := range runs {
		if i > 0 && r.ID <= runs[i-1].ID {
			t.Fatalf("runs not in id order at %d: %d after %d", i, r.ID, runs[i-1].ID)
		}
		if r.State != store.RunQueued || r.Job != "ba" || r.Trigger != store.TriggerManual || r.Attempt != 0 ||
			r.MaxAttempts != 1 || !r.CreatedAt.Equal(t0) || !r.NotBefore.Equal(t0) || r.ScheduledAt != nil {
			t.Fatalf("run %d: %+v", i, r)
		}
	}
	got := must[store.Run](t)(s.RunGet(ctx(t), runs[1202].ID))
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", runs[1202]) {
		t.Fatalf("RunGet = %+v, batch returned %+v", got, runs[1202])
	}
	if n := countRuns(t, s, "ba"); n != 1203 {
		t.Fatalf("%d runs stored, want 1203", n)
	}

	runs = must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "bf", Count: 3, Now: t0}))
	if len(runs) != 3 || runs[0].State != store.RunQueued || runs[1].State != store.RunSkipped || runs[2].State != store.RunSkipped {
		t.Fatalf("forbid: %+v", runs)
	}
	runs = must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "br", Count: 3, Now: t0}))
	if len(runs) != 3 {
		t.Fatalf("replace: %+v", runs)
	}
	for i, want := range []store.RunState{store.RunCanceled, store.RunCanceled, store.RunQueued} {
		if r := must[store.Run](t)(s.RunGet(ctx(t), runs[i].ID)); r.State != want {
			t.Fatalf("replace: run %d is %s, want %s", i, r.State, want)
		}
	}

	_, err := s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "nope", Count: 2, Now: t0})
	wantErr(t, err, store.ErrNotFound)
}

// assignAll assigns the runs to node with tokens tok-ID and returns those tokens.
func assignAll(t *testing.T, s store.Store, node string, runs []store.Run) []store.RunToken {
	t.Helper()
	var as []store.Assignment
	var toks []store.RunToken
	for _, r := range runs {
		tok := fmt.Sprintf("tok-%d", r.ID)
		as = append(as, store.Assignment{RunID: r.ID, Node: node, Token: tok})
		toks = append(toks, store.RunToken{ID: r.ID, Token: tok})
	}
	n, err := s.RunAssign(ctx(t), store.RunAssignParams{Now: t0, Assignments: as})
	if err != nil || n != len(runs) {
		t.Fatalf("assign %d runs: n=%d err=%v", len(runs), n, err)
	}
	return toks
}

// Starting many runs at once: only those still assigned under the token given start.
func testRunStartBatch(t *testing.T, s store.Store) {
	apply(t, s, spec("bs"))
	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "bs", Count: 604, Now: t0}))
	toks := assignAll(t, s, "n1", runs[:603]) // the last stays queued
	for _, r := range must[[]store.Run](t)(s.RunListForNode(ctx(t), "n1")) {
		if r.State != store.RunAssigned || r.Attempt != 1 || r.Token != fmt.Sprintf("tok-%d", r.ID) {
			t.Fatalf("assigned run: %+v", r)
		}
	}
	start := []store.RunToken{toks[0], {ID: toks[1].ID, Token: "stale"}, toks[2], {ID: runs[603].ID, Token: "x"}}
	started := must[[]store.Run](t)(s.RunStartBatch(ctx(t), store.RunStartBatchParams{Now: t0.Add(time.Second), Runs: start}))
	if len(started) != 2 || started[0].ID != runs[0].ID || started[1].ID != runs[2].ID {
		t.Fatalf("started %+v, want runs %d and %d", started, runs[0].ID, runs[2].ID)
	}
	for _, r := range started {
		if r.State != store.RunRunning || r.StartedAt == nil || !r.StartedAt.Equal(t0.Add(time.Second)) || r.Node != "n1" {
			t.Fatalf("started run: %+v", r)
		}
	}
	for id, want := range map[int64]store.RunState{runs[1].ID: store.RunAssigned, runs[603].ID: store.RunQueued} {
		if r := must[store.Run](t)(s.RunGet(ctx(t), id)); r.State != want || r.StartedAt != nil {
			t.Fatalf("run %d: %+v, want %s and not started", id, r, want)
		}
	}
	// Starting again changes nothing; the rest start in one call of several statements.
	if again := must[[]store.Run](t)(s.RunStartBatch(ctx(t), store.RunStartBatchParams{Now: t0, Runs: toks[:1]})); len(again) != 0 {
		t.Fatalf("started twice: %+v", again)
	}
	if rest := must[[]store.Run](t)(s.RunStartBatch(ctx(t), store.RunStartBatchParams{Now: t0, Runs: toks[3:]})); len(rest) != 600 {
		t.Fatalf("started %d of the 600 others", len(rest))
	}
	load := must[[]store.RunCount](t)(s.RunLoad(ctx(t)))
	want := []store.RunCount{{Node: "n1", State: store.RunAssigned, Count: 1}, {Node: "n1", State: store.RunRunning, Count: 602}}
	if len(load) != 2 || load[0] != want[0] || load[1] != want[1] {
		t.Fatalf("RunLoad = %+v, want %+v (the queued run is not counted)", load, want)
	}
}

// Finishing many attempts at once: each is judged by its own token and state, as
// RunFinish would judge it, and the results come item by item.
func testRunFinishBatch(t *testing.T, s store.Store) {
	sp := spec("bn")
	sp.Retries = 1
	apply(t, s, sp)
	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "bn", Count: 7, Now: t0}))
	toks := assignAll(t, s, "n1", runs)
	if started := must[[]store.Run](t)(s.RunStartBatch(ctx(t), store.RunStartBatchParams{Now: t0, Runs: toks})); len(started) != 7 {
		t.Fatalf("started %d of 7", len(started))
	}
	must[store.Run](t)(s.RunCancel(ctx(t), store.RunCancelParams{ID: runs[5].ID, Now: t0}))
	zero, one := 0, 1
	end, retryAt := t0.Add(2*time.Second), t0.Add(time.Minute)
	items := []store.RunFinishParams{
		{RunID: runs[0].ID, Token: toks[0].Token, Now: end, State: store.RunSucceeded, ExitCode: &zero},
		{RunID: runs[1].ID, Token: toks[1].Token, Now: end, State: store.RunFailed, ExitCode: &one, Reason: "exit status 1", RetryAt: &retryAt},
		{RunID: runs[2].ID, Token: "stale", Now: end, State: store.RunSucceeded},
		{RunID: runs[3].ID, Token: toks[3].Token, Now: end, State: store.RunSucceeded, ExitCode: &zero, Stdout: []byte("hello"),
			Outputs: []store.Output{{Name: "r.csv", Size: 3, SHA256: "abc"}}},
		{RunID: runs[4].ID, Token: toks[4].Token, Now: end, State: store.RunSucceeded, ExitCode: &zero},
		{RunID: runs[4].ID, Token: toks[4].Token, Now: end, State: store.RunFailed}, // the same attempt again
		{RunID: runs[5].ID, Token: toks[5].Token, Now: end, State: store.RunFailed, Reason: "canceled", RetryAt: &retryAt},
		{RunID: runs[6].ID + 1000, Token: "x", Now: end, State: store.RunSucceeded},
	}
	errs := must[[]error](t)(s.RunFinishBatch(ctx(t), store.RunFinishBatchParams{Items: items}))
	if len(errs) != len(items) {
		t.Fatalf("%d results for %d items", len(errs), len(items))
	}
	for i, want := range []error{nil, nil, store.ErrStale, nil, nil, store.ErrStale, nil, store.ErrNotFound} {
		if (want == nil) != (errs[i] == nil) || (want != nil && !errors.Is(errs[i], want)) {
			t.Fatalf("item %d: %v, want %v", i, errs[i], want)
		}
	}
	get := func(i int) store.Run { return must[store.Run](t)(s.RunGet(ctx(t), runs[i].ID)) }
	if r := get(0); r.State != store.RunSucceeded || r.FinishedAt == nil || !r.FinishedAt.Equal(end) || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Fatalf("succeeded run: %+v", r)
	}
	if r := get(1); r.State != store.RunQueued || !r.NotBefore.Equal(retryAt) || r.Token != "" || r.Node != "" || r.StartedAt != nil ||
		r.Reason != "exit status 1" {
		t.Fatalf("retried run: %+v", r)
	}
	if r := get(2); r.State != store.RunRunning {
		t.Fatalf("run finished with a stale token: %+v", r)
	}
	if r := get(3); r.State != store.RunSucceeded || string(r.Stdout) != "hello" {
		t.Fatalf("run with output: %+v", r)
	}
	if outs := must[[]store.Output](t)(s.OutputList(ctx(t), runs[3].ID)); len(outs) != 1 || outs[0].Node != "n1" || outs[0].Attempt != 1 {
		t.Fatalf("outputs: %+v", outs)
	}
	if r := get(4); r.State != store.RunSucceeded {
		t.Fatalf("a second result of one attempt overwrote the first: %+v", r)
	}
	if r := get(5); r.State != store.RunFailed || r.FinishedAt == nil {
		t.Fatalf("a run asked to stop was retried: %+v", r)
	}
	load := must[[]store.RunCount](t)(s.RunLoad(ctx(t)))
	if len(load) != 1 || load[0] != (store.RunCount{Node: "n1", State: store.RunRunning, Count: 2}) {
		t.Fatalf("RunLoad = %+v, want runs 2 and 6 running on n1", load)
	}
	// A finished attempt cannot be finished again.
	errs = must[[]error](t)(s.RunFinishBatch(ctx(t), store.RunFinishBatchParams{Items: items[:1]}))
	wantErr(t, errs[0], store.ErrStale)
}

// Dispatch candidates come in the order runs became due, a page at a time.
func testRunListDispatchablePages(t *testing.T, s store.Store) {
	sp := spec("dp")
	sp.Retries = 1
	apply(t, s, sp)
	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "dp", Count: 5, Now: t0}))
	// The first run fails and is due again a minute later: after the others.
	tok := assignAll(t, s, "n1", runs[:1])
	must[[]store.Run](t)(s.RunStartBatch(ctx(t), store.RunStartBatchParams{Now: t0, Runs: tok}))
	retryAt := t0.Add(time.Minute)
	if errs := must[[]error](t)(s.RunFinishBatch(ctx(t), store.RunFinishBatchParams{Items: []store.RunFinishParams{
		{RunID: runs[0].ID, Token: tok[0].Token, Now: t0, State: store.RunFailed, RetryAt: &retryAt}}})); errs[0] != nil {
		t.Fatal(errs[0])
	}
	want := []int64{runs[1].ID, runs[2].ID, runs[3].ID, runs[4].ID, runs[0].ID}
	var got []int64
	p := store.RunListDispatchableParams{Now: retryAt, Limit: 2}
	for range 10 {
		page := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), p))
		for _, c := range page {
			if c.Spec.Name != "dp" || c.Run.State != store.RunQueued || c.Active != 0 {
				t.Fatalf("candidate: %+v", c)
			}
			got = append(got, c.Run.ID)
		}
		if len(page) < p.Limit {
			break
		}
		last := page[len(page)-1].Run
		p.AfterNotBefore, p.AfterID = last.NotBefore, last.ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("candidates %v, want %v (due order, then id)", got, want)
	}
	// Before the retry is due, it is not a candidate.
	if c := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: t0})); len(c) != 4 {
		t.Fatalf("%d candidates before the retry is due, want 4", len(c))
	}
	// The runs of skipped jobs are left out; the others keep their order.
	apply(t, s, spec("dq"))
	other := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "dq", Count: 2, Now: t0}))
	c := must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: retryAt,
		SkipJobs: []int64{runs[0].JobID}}))
	if len(c) != 2 || c[0].Run.ID != other[0].ID || c[1].Run.ID != other[1].ID {
		t.Fatalf("candidates with dp skipped: %+v, want dq's two runs", c)
	}
	c = must[[]store.DispatchCandidate](t)(s.RunListDispatchable(ctx(t), store.RunListDispatchableParams{Now: retryAt,
		SkipJobs: []int64{runs[0].JobID, other[0].JobID}}))
	if len(c) != 0 {
		t.Fatalf("candidates with every job skipped: %+v, want none", c)
	}
}

// An assignment with Start is the attempt's start: the runs are running at once. The
// node's own process hands back the attempts it never began, each only under its current
// token and only while the node id is still that process's; a superseded token is
// refused afterwards.
func testRunAssignStart(t *testing.T, s store.Store) {
	apply(t, s, spec("as"))
	if err := s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: "n1", Holder: "n1#a", Mode: "standby", Capacity: 4}}); err != nil {
		t.Fatal(err)
	}
	runs := must[[]store.Run](t)(s.RunCreateBatch(ctx(t), store.RunCreateBatchParams{Job: "as", Count: 3, Now: t0}))
	var as []store.Assignment
	for _, r := range runs {
		as = append(as, store.Assignment{RunID: r.ID, Node: "n1", Token: fmt.Sprintf("tok-%d", r.ID)})
	}
	if n, err := s.RunAssign(ctx(t), store.RunAssignParams{Now: t0.Add(time.Second), Assignments: as, Start: true}); err != nil || n != 3 {
		t.Fatalf("assign with start: %d, %v", n, err)
	}
	for _, r := range must[[]store.Run](t)(s.RunListForNode(ctx(t), "n1")) {
		if r.State != store.RunRunning || r.Attempt != 1 || r.StartedAt == nil || !r.StartedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("run assigned with start: %+v", r)
		}
	}
	load := must[[]store.RunCount](t)(s.RunLoad(ctx(t)))
	if len(load) != 1 || load[0] != (store.RunCount{Node: "n1", State: store.RunRunning, Count: 3}) {
		t.Fatalf("RunLoad = %+v", load)
	}
	give := []store.RunToken{{ID: runs[0].ID, Token: as[0].Token}, {ID: runs[1].ID, Token: "stale"}}
	p := store.RunReleaseParams{Node: "n1", Holder: "n1#b", Runs: give, Now: t0.Add(2 * time.Second), Reason: "not begun"}
	if ids := must[[]int64](t)(s.RunRelease(ctx(t), p)); len(ids) != 0 {
		t.Fatalf("a process that does not hold the node id handed back %v", ids)
	}
	p.Holder = "n1#a"
	ids := must[[]int64](t)(s.RunRelease(ctx(t), p))
	if len(ids) != 1 || ids[0] != runs[0].ID {
		t.Fatalf("handed back %v, want only run %d (the other token is stale)", ids, runs[0].ID)
	}
	got := must[store.Run](t)(s.RunGet(ctx(t), runs[0].ID))
	if got.State != store.RunQueued || got.Attempt != 0 || got.Token != "" || got.Node != "" || got.StartedAt != nil || got.Reason != "not begun" {
		t.Fatalf("handed back run: %+v, want queued, no attempt spent", got)
	}
	if got := must[store.Run](t)(s.RunGet(ctx(t), runs[1].ID)); got.State != store.RunRunning {
		t.Fatalf("run under another token: %+v", got)
	}
	_, err := store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: runs[0].ID, Token: as[0].Token, Now: t0, State: store.RunSucceeded})
	wantErr(t, err, store.ErrStale)
	if ids := must[[]int64](t)(s.RunRelease(ctx(t), p)); len(ids) != 0 {
		t.Fatalf("handed back %v twice", ids)
	}
}
