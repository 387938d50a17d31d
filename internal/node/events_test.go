package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/testutil"
)

// events lists the events of type typ, oldest first.
func (h *harness) events(typ string) []store.Event {
	h.t.Helper()
	evs, err := h.st.EventList(ctx(h.t), store.EventListParams{Type: typ, Follow: true, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// A node's start is recorded with its claim of the node id, its stop with the
// heartbeat that records it stopped, its step-down with its resignation: each once.
func TestLifecycleEventsWithTheirChange(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	if evs := h.events("node.joined"); len(evs) != 1 || evs[0].Data["node"] != "n1" {
		t.Fatalf("node.joined events %+v, want one naming n1", evs)
	}
	testutil.Wait(t, 10*time.Second, "the node to be primary", func() bool { return h.node.Mode() == "primary" })
	if err := h.node.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nodes, err := h.st.NodeList(ctx(t))
	if err != nil || len(nodes) != 1 || nodes[0].Mode != "stopped" {
		t.Fatalf("nodes %+v (%v), want n1 stopped", nodes, err)
	}
	for _, typ := range []string{"node.stopping", "node.stopped", "primary.stepped_down"} {
		if evs := h.events(typ); len(evs) != 1 {
			t.Fatalf("%d %s events, want 1: %+v", len(evs), typ, evs)
		}
	}
	if l, err := h.st.LeaseGet(ctx(t), store.PrimaryLease); err != nil || l.ExpiresAt.After(l.Now) {
		t.Fatalf("lease %+v (%v), want resigned", l, err)
	}
}

// A process whose node id another process claimed meanwhile (it was found dead, or
// frozen past its lease) records no drain and no stop: its heartbeats are refused, and
// the events that would say so go with them.
func TestReplacedProcessRecordsNoStop(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *config.Config) { c.Worker = true })
	nodes, err := h.st.NodeList(ctx(t))
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %+v (%v)", nodes, err)
	}
	other := nodes[0]
	other.Holder = "n1#other"
	if err := h.st.NodeClaim(ctx(t), store.NodeClaimParams{Node: other, Replace: nodes[0].Holder}); err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	if err := h.node.Stop(stop); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"node.stopping", "node.stopped"} {
		if evs := h.events(typ); len(evs) != 0 {
			t.Errorf("%s recorded for a process whose id another claimed: %+v", typ, evs)
		}
	}
	nodes, err = h.st.NodeList(ctx(t))
	if err != nil || len(nodes) != 1 || nodes[0].Holder != "n1#other" || nodes[0].Mode == "stopped" {
		t.Fatalf("nodes %+v (%v), want n1 still the other process's", nodes, err)
	}
}

// A weight and its node.weight event are one write.
func TestWeightEventWithTheWeight(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	if err := h.node.NodeWeight(ctx(t), 3, "test"); err != nil {
		t.Fatal(err)
	}
	evs := h.events("node.weight")
	if len(evs) != 1 || evs[0].Data["weight"] != float64(3) || evs[0].Data["previous"] != float64(1) || evs[0].Data["by"] != "test" {
		t.Fatalf("node.weight events %+v, want one from 1 to 3 by test", evs)
	}
	if v, err := h.st.SettingGet(ctx(t), store.SettingNodeWeightPrefix+"n1"); err != nil || v != "3" {
		t.Fatalf("stored weight %q (%v), want 3", v, err)
	}
}

// A process that claimed its node id (recording its node.joined) and then could not
// start records its stop, with why: the node shows stopped, not live until its silence
// has it declared lost.
func TestFailedStartRecordsTheStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.NodeID = dir, "127.0.0.1:0", "n1"
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(cfg, st, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err := n.Start(ctx(t)); err == nil {
		_ = n.Stop(ctx(t))
		t.Fatal("a node whose certificate file is missing started")
	}
	h := &harness{t: t, st: st}
	if evs := h.events("node.joined"); len(evs) != 1 {
		t.Fatalf("node.joined events %+v, want the claim's", evs)
	}
	evs := h.events("node.stopped")
	if len(evs) != 1 || evs[0].Data["node"] != "n1" || !strings.Contains(fmt.Sprint(evs[0].Data["error"]), "missing.crt") {
		t.Fatalf("node.stopped events %+v, want one naming n1 and the missing certificate", evs)
	}
	nodes, err := st.NodeList(ctx(t))
	if err != nil || len(nodes) != 1 || nodes[0].Mode != "stopped" {
		t.Fatalf("nodes %+v (%v), want n1 stopped", nodes, err)
	}
}
