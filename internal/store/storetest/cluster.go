package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// ClusterRead returns, in one statement, what NodeList, RunCounts, LeaseGet of every
// lease and HoldList return one by one.
func testClusterRead(t *testing.T, s store.Store) {
	empty := must[store.ClusterView](t)(s.ClusterRead(ctx(t)))
	if len(empty.Nodes)+len(empty.Counts)+len(empty.Leases)+len(empty.Holds) != 0 {
		t.Fatalf("empty repository: %+v", empty)
	}
	for _, n := range []store.Node{
		{ID: "b", Holder: "b#1", Address: "10.0.0.2:8200", Mode: "standby", Priority: 1, Capacity: 2, Weight: 2.5, Tags: []string{"x", "y"}, StartedAt: t0, Version: "1.2.3"},
		{ID: "a", Holder: "a#1", Address: "10.0.0.1:8200", Mode: "primary", Capacity: 4, Running: 1, Weight: 1, Tags: []string{}, StartedAt: t0},
	} {
		if err := s.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: n}); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, s, spec("c1"))
	for range 3 {
		must[store.Run](t)(s.RunCreate(ctx(t), store.RunCreateParams{Job: "c1", Now: t0}))
	}
	for _, name := range []string{store.PrimaryLease, store.SlotLease(0)} {
		must[store.Lease](t)(s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: name, Holder: "a#1", Node: "a", TTL: time.Minute}))
	}
	if err := s.HoldSet(ctx(t), store.Hold{Target: "b", Kind: "standby", By: "token t from 127.0.0.1:1 via node a", At: t0}); err != nil {
		t.Fatal(err)
	}
	v := must[store.ClusterView](t)(s.ClusterRead(ctx(t)))
	nodes := must[[]store.Node](t)(s.NodeList(ctx(t)))
	if !reflect.DeepEqual(v.Nodes, nodes) {
		t.Errorf("nodes:\n%+v\nwant\n%+v", v.Nodes, nodes)
	}
	if counts := must[[]store.RunCount](t)(s.RunCounts(ctx(t))); !reflect.DeepEqual(v.Counts, counts) {
		t.Errorf("counts: %+v, want %+v", v.Counts, counts)
	}
	if holds := must[[]store.Hold](t)(s.HoldList(ctx(t))); !reflect.DeepEqual(v.Holds, holds) {
		t.Errorf("holds: %+v, want %+v", v.Holds, holds)
	}
	if len(v.Leases) != 2 {
		t.Fatalf("leases: %+v", v.Leases)
	}
	for _, l := range v.Leases {
		want := must[store.Lease](t)(s.LeaseGet(ctx(t), l.Name))
		if l.Holder != want.Holder || l.Epoch != want.Epoch || !l.ExpiresAt.Equal(want.ExpiresAt) || l.Successor != want.Successor ||
			l.Now.Sub(want.Now).Abs() > 5*time.Second || !l.ExpiresAt.After(l.Now) {
			t.Errorf("lease %s: %+v, want %+v", l.Name, l, want)
		}
	}
	if l, ok := v.Lease(store.PrimaryLease); !ok || l.Holder != "a#1" {
		t.Errorf("primary lease: %+v %v", l, ok)
	}
}
