package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
)

// Nodes started at the same moment on an empty repository end with exactly one primary
// (epoch 1) and the others standing by, on both engines; at no moment are two primary.
func TestNodesStartingTogetherElectOne(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			for round := range 3 {
				db := filepath.Join(t.TempDir(), "shared.db")
				if engine == "postgres" {
					db = pgtest.NewDatabase(t)
				}
				electOne(t, db, round)
			}
		})
	}
}

func electOne(t *testing.T, db string, round int) {
	const size = 3
	nodes := make([]*node.Node, size)
	stores := make([]store.Store, size)
	var ready, wg sync.WaitGroup
	ready.Add(1)
	errs := make(chan error, size)
	for i := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := config.Default()
			cfg.DataDir, cfg.DB, cfg.Listen = t.TempDir(), db, "127.0.0.1:0"
			cfg.NodeID, cfg.ShutdownGrace = fmt.Sprintf("n%d", i), time.Second
			if err := cfg.Finish(); err != nil {
				errs <- err
				return
			}
			ready.Wait() // every node opens its repository and starts at the same moment
			st, err := openStore(cfg)
			if err != nil {
				errs <- err
				return
			}
			stores[i] = st
			nodes[i] = node.New(cfg, st, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
			errs <- nodes[i].Start(context.Background())
		}()
	}
	ready.Done()
	wg.Wait()
	defer func() {
		for i, n := range nodes {
			if n != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = n.Stop(ctx)
				cancel()
			}
			if stores[i] != nil {
				stores[i].Close()
			}
		}
	}()
	for range size {
		if err := <-errs; err != nil {
			t.Fatalf("round %d: start: %v", round, err)
		}
	}
	primaries := func() []string {
		var out []string
		for _, n := range nodes {
			if m := n.Mode(); m == node.ModePrimary {
				out = append(out, n.NodeID())
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(primaries()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: no primary within 10s", round)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Watch for a while: always exactly one, the same one.
	first := primaries()
	for range 100 {
		if p := primaries(); len(p) != 1 || p[0] != first[0] {
			t.Fatalf("round %d: primaries %v after %v was elected", round, p, first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs, err := stores[0].EventList(context.Background(), store.EventListParams{Type: "primary.changed", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Node != first[0] || fmt.Sprint(evs[0].Data["epoch"]) != "1" {
		t.Fatalf("round %d: primary.changed events %+v, want one, for %s at epoch 1", round, evs, first[0])
	}
}
