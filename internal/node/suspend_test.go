package node_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

// A suspended primary fires and dispatches nothing, but still declares a silent node
// lost and queues its runs again.
func TestSuspendedPrimaryStillReapsLostNodes(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Heartbeat.Interval = 100 * time.Millisecond })
	testutil.Wait(t, 10*time.Second, "the node to become primary", func() bool { return h.node.Mode() == node.ModePrimary })
	h.apply("name = \"j\"\n[noop]\n")
	st, err := storesqlite.Open(ctx(t), filepath.Join(h.dir, "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := h.c.NodeAction(ctx(t), "n1", node.ActionSuspend); err != nil {
		t.Fatal(err)
	}
	if err := st.NodeHeartbeat(ctx(t), store.NodeHeartbeatParams{Node: store.Node{ID: "ghost", Mode: node.ModeWorker, Capacity: 4}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.RunCreate(ctx(t), store.RunCreateParams{Job: "j", Trigger: store.TriggerManual, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.RunAssign(ctx(t), store.RunAssignParams{Now: time.Now(), Assignments: []store.Assignment{{RunID: r.ID, Node: "ghost", Token: "t1"}}}); err != nil || n != 1 {
		t.Fatalf("assign: %d %v", n, err)
	}
	testutil.Wait(t, 10*time.Second, "the silent node's run to be queued again", func() bool {
		got, err := st.RunGet(ctx(t), r.ID)
		return err == nil && got.State == store.RunQueued
	})
	if m := h.node.Mode(); m != node.ModeSuspended {
		t.Fatalf("mode %s, want suspended throughout", m)
	}
	got, _ := st.RunGet(ctx(t), r.ID)
	if got.Node != "" {
		t.Fatalf("run %+v: dispatched by a suspended primary", got)
	}
}
