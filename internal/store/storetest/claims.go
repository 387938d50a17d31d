package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// A node id belongs to the process that claimed it: another process's claim is refused
// unless it names the claim it replaces, and once replaced, the old process's heartbeats
// are refused (ErrClaimed) and change nothing.
func testNodeClaim(t *testing.T, s store.Store) {
	node := func(holder, addr string) store.Node {
		return store.Node{ID: "n", Holder: holder, Address: addr, Mode: "standby", Capacity: 1}
	}
	claim := func(holder, addr, replace string) error {
		return s.NodeClaim(ctx(t), store.NodeClaimParams{Node: node(holder, addr), Replace: replace})
	}
	beat := func(holder, addr string) error {
		return s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: node(holder, addr)})
	}
	if err := claim("n#1", "addr1", ""); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := beat("n#1", "addr1"); err != nil {
		t.Fatalf("heartbeat of the claimant: %v", err)
	}
	wantErr(t, claim("n#2", "addr2", ""), store.ErrClaimed)
	wantErr(t, claim("n#2", "addr2", "n#9"), store.ErrClaimed)
	wantErr(t, beat("n#2", "addr2"), store.ErrClaimed)
	if nodes := must[[]store.Node](t)(s.NodeList(ctx(t))); len(nodes) != 1 || nodes[0].Holder != "n#1" || nodes[0].Address != "addr1" {
		t.Fatalf("after refused claims: %+v, want n#1 at addr1", nodes)
	}
	if err := claim("n#2", "addr2", "n#1"); err != nil {
		t.Fatalf("claim replacing n#1: %v", err)
	}
	wantErr(t, beat("n#1", "addr1"), store.ErrClaimed)
	if nodes := must[[]store.Node](t)(s.NodeList(ctx(t))); len(nodes) != 1 || nodes[0].Holder != "n#2" || nodes[0].Address != "addr2" {
		t.Fatalf("after the takeover: %+v, want n#2 at addr2", nodes)
	}
}

// A node whose process is dead is declared lost at once, without its silence, but only
// while the row is still that process's: a new process of the node id is not lost.
func testNodeLoseDead(t *testing.T, s store.Store) {
	l := must[store.Lease](t)(acquire(t, s, "p", time.Minute))
	if err := s.NodeClaim(ctx(t), store.NodeClaimParams{Node: store.Node{ID: "d", Holder: "d#1", Mode: "worker", Capacity: 1}}); err != nil {
		t.Fatal(err)
	}
	res := must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "d", Silence: time.Hour, Dead: "d#0"}))
	if res.Lost {
		t.Fatal("declared lost for the death of a process that no longer holds the node id")
	}
	res = must[store.NodeLoseResult](t)(s.NodeLose(ctx(t), store.NodeLoseParams{Epoch: l.Epoch, Node: "d", Silence: time.Hour, Dead: "d#1"}))
	if !res.Lost {
		t.Fatal("a node whose process is dead was not declared lost at once")
	}
}

// Holds are stored by target, replaced by a new hold on the same target, and cleared.
func testHolds(t *testing.T, s store.Store) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, h := range []store.Hold{
		{Target: store.HoldPrimary, Kind: store.HoldSuspend, By: "x", At: at},
		{Target: "b", Kind: store.HoldStandby, By: "y", At: at},
		{Target: store.HoldPrimary, Kind: store.HoldSuspend, By: "z", At: at.Add(time.Second)},
	} {
		if err := s.HoldSet(ctx(t), h); err != nil {
			t.Fatal(err)
		}
	}
	got := must[[]store.Hold](t)(s.HoldList(ctx(t)))
	if len(got) != 2 || got[0].Target != "b" || got[1].Target != store.HoldPrimary || got[1].By != "z" || !got[1].At.Equal(at.Add(time.Second)) {
		t.Fatalf("holds: %+v, want b's and the primary's (set again by z)", got)
	}
	if err := s.HoldClear(ctx(t), store.HoldPrimary); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.HoldClear(ctx(t), store.HoldPrimary), store.ErrNotFound)
	if got := must[[]store.Hold](t)(s.HoldList(ctx(t))); len(got) != 1 || got[0].Target != "b" {
		t.Fatalf("holds after clearing the primary's: %+v", got)
	}
}

// Settings are stored by key, replaced when set again; an unset key is ErrNotFound. A
// node's weight goes with its heartbeat (1 when none is given).
func testSettingsAndWeight(t *testing.T, s store.Store) {
	_, err := s.SettingGet(ctx(t), store.SettingDispatchAlgorithm)
	wantErr(t, err, store.ErrNotFound)
	for _, v := range []string{"min-load", "weighted-min-load"} {
		if err := s.SettingSet(ctx(t), store.SettingDispatchAlgorithm, v, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if v := must[string](t)(s.SettingGet(ctx(t), store.SettingDispatchAlgorithm)); v != "weighted-min-load" {
		t.Fatalf("setting %q, want the last one set", v)
	}
	for _, n := range []store.Node{{ID: "w1", Holder: "w1#1", Weight: 2.5}, {ID: "w2", Holder: "w2#1"}} {
		if err := s.NodeClaim(ctx(t), store.NodeClaimParams{Node: n}); err != nil {
			t.Fatal(err)
		}
	}
	nodes := must[[]store.Node](t)(s.NodeList(ctx(t)))
	if len(nodes) != 2 || nodes[0].Weight != 2.5 || nodes[1].Weight != 1 {
		t.Fatalf("weights %+v, want 2.5 and the default 1", nodes)
	}
}

// An operator's hold and its event are one transaction: set or cleared together, and a
// clear of no hold records neither.
func testHoldEvents(t *testing.T, s store.Store) {
	ev := func(typ string) store.EventAppendParams {
		return store.EventAppendParams{Type: typ, Node: "a", Message: typ, Data: map[string]any{"by": "op"}, Now: t0}
	}
	if err := s.HoldSet(ctx(t), store.Hold{Target: "a", Kind: store.HoldStandby, By: "op", At: t0}, ev("node.held")); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldClear(ctx(t), "a", ev("node.resumed")); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldClear(ctx(t), "a", ev("node.resumed")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("clearing no hold: %v, want ErrNotFound", err)
	}
	var got []string
	for _, e := range must[[]store.Event](t)(s.EventList(ctx(t), store.EventListParams{Follow: true})) {
		got = append(got, e.Type)
	}
	if strings.Join(got, ",") != "node.held,node.resumed" {
		t.Fatalf("events %v, want node.held then node.resumed (once)", got)
	}
}
