package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// finishWithOutputs runs one attempt of a new run of job on node and records its outputs.
func finishWithOutputs(t *testing.T, s store.Store, jobName, node string, outs ...store.Output) store.Run {
	t.Helper()
	r := must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: jobName, Now: t0}))
	startRun(t, s, r, node, "t"+node)
	return must[store.Run](t)(store.RunFinish(ctx(t), s, store.RunFinishParams{RunID: r.ID, Token: "t" + node, Now: t0,
		State: store.RunSucceeded, Outputs: outs}))
}

func heartbeatNodes(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: id, Mode: "standby", Capacity: 2}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Retention removes the records of every copy of the outputs of runs that ended before
// the cutoff, whoever asks.
func testOutputsExpire(t *testing.T, s store.Store) {
	apply(t, s, spec("o"))
	r := finishWithOutputs(t, s, "o", "n", store.Output{Name: "x", Size: 1, SHA256: "h"})
	if got := must[[]store.Output](t)(s.OutputExpire(ctx(t), store.OutputExpireParams{Before: t0})); len(got) != 0 {
		t.Fatalf("expired too early: %+v", got)
	}
	must[struct{}](t)(struct{}{}, store.OutputHolderAdd(ctx(t), s, store.OutputHolderAddParams{Ref: store.OutputRef{RunID: r.ID, Attempt: 1, Name: "x"}, Node: "m", Target: 2}))
	got := must[[]store.Output](t)(s.OutputExpire(ctx(t), store.OutputExpireParams{Before: t0.Add(time.Second)}))
	if len(got) != 1 || got[0].Name != "x" || len(got[0].Holders) != 2 {
		t.Fatalf("expired: %+v, want x with its two holders", got)
	}
	if left := must[[]store.Output](t)(s.OutputList(ctx(t), r.ID)); len(left) != 0 {
		t.Fatalf("outputs left after expiry: %+v", left)
	}
	err := store.OutputClaim(ctx(t), s, store.OutputClaimParams{Ref: got[0].Ref(), Node: "k", Target: 2, TTL: time.Minute})
	wantErr(t, err, store.ErrNotFound)
}

// An output is recorded with its producer as verified holder; copy slots are claimed up
// to the target (a claim holds its slot until it expires), a verified copy settles the
// output, a dropped copy makes it need copies again.
func testOutputCopies(t *testing.T, s store.Store) {
	apply(t, s, spec("c"))
	r := finishWithOutputs(t, s, "c", "a", store.Output{Name: "dir/f.csv", Size: 3, SHA256: "abc", Copies: 3})
	outs := must[[]store.Output](t)(s.OutputList(ctx(t), r.ID))
	if len(outs) != 1 || outs[0].Copies != 3 || len(outs[0].Holders) != 1 || outs[0].Holders[0].Node != "a" || !outs[0].Holders[0].Verified() {
		t.Fatalf("recorded output: %+v, want copies 3 held by a (verified)", outs)
	}
	ref := outs[0].Ref()
	pending := func() []store.Output {
		return must[[]store.Output](t)(s.OutputFind(ctx(t), store.OutputFindParams{NeedsCopies: true}))
	}
	if p := pending(); len(p) != 1 || p[0].Ref() != ref {
		t.Fatalf("needing copies: %+v", p)
	}
	live := []string{"a", "b", "c", "d"}
	claim := func(node string, target int, ttl time.Duration) error {
		return store.OutputClaim(ctx(t), s, store.OutputClaimParams{Ref: ref, Node: node, Live: live, Target: target, TTL: ttl})
	}
	wantErr(t, claim("a", 3, time.Minute), store.ErrConflict) // a holds it
	if err := claim("b", 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := claim("c", 3, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wantErr(t, claim("d", 3, time.Minute), store.ErrConflict) // a, and claims of b and c
	time.Sleep(50 * time.Millisecond)                         // c's claim expires
	if err := claim("d", 3, time.Minute); err != nil {
		t.Fatalf("a slot whose claim expired: %v", err)
	}
	add := func(node string) {
		t.Helper()
		if err := store.OutputHolderAdd(ctx(t), s, store.OutputHolderAddParams{Ref: ref, Node: node, Live: live, Target: 3}); err != nil {
			t.Fatal(err)
		}
	}
	add("b")
	if p := pending(); len(p) != 1 {
		t.Fatalf("two copies of three: %+v, want it still needing copies", p)
	}
	add("d")
	if p := pending(); len(p) != 0 {
		t.Fatalf("three copies of three: %+v, want it settled", p)
	}
	outs = must[[]store.Output](t)(s.OutputFind(ctx(t), store.OutputFindParams{RunID: r.ID}))
	verified := 0
	for _, h := range outs[0].Holders {
		if h.Verified() {
			verified++
		}
	}
	if verified != 3 {
		t.Fatalf("holders: %+v, want a, b and d verified", outs[0].Holders)
	}
	must[struct{}](t)(struct{}{}, s.OutputHolderDrop(ctx(t), ref, "b"))
	if p := pending(); len(p) != 1 || len(p[0].Holders) != 3 {
		t.Fatalf("after b's copy was dropped: %+v, want it needing copies, with a, c (expired claim) and d", p)
	}
	must[struct{}](t)(struct{}{}, s.OutputSettle(ctx(t), []store.OutputRef{ref}))
	if p := pending(); len(p) != 0 {
		t.Fatalf("settled: %+v", p)
	}
	if got := must[[]store.Output](t)(s.OutputFind(ctx(t), store.OutputFindParams{RunIDs: []int64{r.ID, r.ID + 100}})); len(got) != 1 {
		t.Fatalf("by run ids: %+v", got)
	}

	// In one batch each item is judged on its own: a refused or vanished one changes
	// nothing, the others are claimed, then recorded, in one transaction each.
	gone := store.OutputRef{RunID: r.ID + 100, Attempt: 1, Name: "none"}
	errs := must[[]error](t)(s.OutputClaimBatch(ctx(t), []store.OutputClaimParams{
		{Ref: ref, Node: "a", Live: live, Target: 4, TTL: time.Minute}, // a holds it
		{Ref: gone, Node: "e", Live: live, Target: 2, TTL: time.Minute},
		{Ref: ref, Node: "e", Live: live, Target: 4, TTL: time.Minute},
	}))
	if len(errs) != 3 || !errors.Is(errs[0], store.ErrConflict) || !errors.Is(errs[1], store.ErrNotFound) || errs[2] != nil {
		t.Fatalf("claim batch: %v, want conflict, not found, claimed", errs)
	}
	errs = must[[]error](t)(s.OutputHolderAddBatch(ctx(t), []store.OutputHolderAddParams{
		{Ref: gone, Node: "e", Live: live, Target: 4},
		{Ref: ref, Node: "e", Live: append(live, "e"), Target: 4},
	}))
	if len(errs) != 2 || !errors.Is(errs[0], store.ErrNotFound) || errs[1] != nil {
		t.Fatalf("holder batch: %v, want not found, recorded", errs)
	}
	outs = must[[]store.Output](t)(s.OutputFind(ctx(t), store.OutputFindParams{RunID: r.ID}))
	for _, h := range outs[0].Holders {
		if h.Node == "e" && !h.Verified() {
			t.Fatalf("e's copy recorded by the batch is not verified: %+v", h)
		}
	}
}

// Declaring a node lost marks its copies lost (they no longer count), drops its claims
// and says which outputs are under-replicated and which have no live holder left; a
// copy checked again after the node came back counts again.
func testOutputsOfALostNode(t *testing.T, s store.Store) {
	apply(t, s, spec("l"))
	heartbeatNodes(t, s, "a", "b", "c")
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	alone := finishWithOutputs(t, s, "l", "a", store.Output{Name: "one", Size: 1, SHA256: "h1", Copies: 1})
	shared := finishWithOutputs(t, s, "l", "a", store.Output{Name: "two", Size: 1, SHA256: "h2"})
	elsewhere := finishWithOutputs(t, s, "l", "b", store.Output{Name: "three", Size: 1, SHA256: "h3"})
	sharedRef := store.OutputRef{RunID: shared.ID, Attempt: 1, Name: "two"}
	must[struct{}](t)(struct{}{}, store.OutputHolderAdd(ctx(t), s, store.OutputHolderAddParams{Ref: sharedRef, Node: "b", Live: []string{"a", "b"}, Target: 2}))
	// c is making a copy of b's output when it is lost too, later.
	elseRef := store.OutputRef{RunID: elsewhere.ID, Attempt: 1, Name: "three"}
	must[struct{}](t)(struct{}{}, store.OutputClaim(ctx(t), s, store.OutputClaimParams{Ref: elseRef, Node: "c", Live: []string{"b", "c"}, Target: 2, TTL: time.Hour}))

	time.Sleep(5 * time.Millisecond)
	res := must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "a", Silence: time.Millisecond}))
	if !res.Lost || len(res.OutputsLost) != 1 || res.OutputsLost[0].RunID != alone.ID ||
		len(res.Underreplicated) != 1 || res.Underreplicated[0] != sharedRef {
		t.Fatalf("NodeLose = %+v, want run %d's output lost and %s under-replicated", res, alone.ID, sharedRef)
	}
	outs := must[[]store.Output](t)(s.OutputList(ctx(t), alone.ID))
	if len(outs[0].Holders) != 1 || outs[0].Holders[0].LostAt == nil || outs[0].Holders[0].Verified() {
		t.Fatalf("holders of the lost node's output: %+v, want a marked lost", outs[0].Holders)
	}
	if p := must[[]store.Output](t)(s.OutputFind(ctx(t), store.OutputFindParams{NeedsCopies: true})); len(p) != 3 {
		t.Fatalf("needing copies: %d outputs, want 3", len(p))
	}
	res = must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "c", Silence: time.Millisecond}))
	if !res.Lost || len(res.OutputsLost)+len(res.Underreplicated) != 0 {
		t.Fatalf("NodeLose of a node that only claimed a slot: %+v", res)
	}
	if outs := must[[]store.Output](t)(s.OutputList(ctx(t), elsewhere.ID)); len(outs[0].Holders) != 1 {
		t.Fatalf("holders after the claimer was lost: %+v, want its claim gone", outs[0].Holders)
	}
	// a comes back and checks its copy: it counts again.
	must[struct{}](t)(struct{}{}, store.OutputHolderAdd(ctx(t), s, store.OutputHolderAddParams{Ref: outs[0].Ref(), Node: "a", Live: []string{"a", "b"}, Target: 2}))
	if outs := must[[]store.Output](t)(s.OutputList(ctx(t), alone.ID)); len(outs[0].Holders) != 1 || !outs[0].Holders[0].Verified() {
		t.Fatalf("holders after a checked its copy: %+v", outs[0].Holders)
	}
}
