package dispatch

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tandemhq/tandem/internal/job"
)

// The dispatcher's algorithms are the values a job's `balance` and the server's
// dispatch.algorithm accept.
func TestAlgorithmsMatchTheJobFile(t *testing.T) {
	if !slices.Equal(Algorithms, job.BalanceAlgorithms) {
		t.Fatalf("dispatch %v, job files %v", Algorithms, job.BalanceAlgorithms)
	}
}

// Each algorithm over a table of node states: which node gets the next run.
func TestPickByAlgorithm(t *testing.T) {
	nodes := func(ts ...Target) []Target { return ts }
	cases := []struct {
		name      string
		algorithm string
		local     string
		targets   []Target
		tags      []string
		want      string // "" for none
	}{
		{"min-load picks the least loaded", MinLoad, "", nodes(
			Target{ID: "a", Free: 4, Running: 3}, Target{ID: "b", Free: 4, Running: 1}, Target{ID: "c", Free: 4, Running: 2}), nil, "b"},
		{"min-load: a tie goes to the local node", MinLoad, "c", nodes(
			Target{ID: "a", Free: 4, Running: 1}, Target{ID: "b", Free: 4, Running: 1}, Target{ID: "c", Free: 4, Running: 1}), nil, "c"},
		{"min-load: the local node only on a tie", MinLoad, "c", nodes(
			Target{ID: "a", Free: 4, Running: 0}, Target{ID: "c", Free: 4, Running: 1}), nil, "a"},
		{"min-load: capacity is a hard constraint", MinLoad, "", nodes(
			Target{ID: "a", Free: 0, Running: 0}, Target{ID: "b", Free: 1, Running: 9}), nil, "b"},
		{"min-load: tags are a hard constraint", MinLoad, "", nodes(
			Target{ID: "a", Free: 4, Running: 0}, Target{ID: "b", Free: 4, Running: 5, Tags: []string{"gpu"}}), []string{"gpu"}, "b"},
		{"min-load: nobody qualifies", MinLoad, "", nodes(Target{ID: "a", Free: 4}), []string{"gpu"}, ""},
		{"weighted-min-load divides by weight", WeightedMinLoad, "", nodes(
			Target{ID: "a", Free: 9, Running: 1, Weight: 1}, Target{ID: "b", Free: 9, Running: 3, Weight: 4}), nil, "b"},
		{"weighted-min-load: a tie goes to the local node", WeightedMinLoad, "a", nodes(
			Target{ID: "a", Free: 9, Running: 1, Weight: 1}, Target{ID: "b", Free: 9, Running: 4, Weight: 3}), nil, "a"},
		{"weighted-min-load without weights is round-robin", WeightedMinLoad, "", nodes(
			Target{ID: "a", Free: 9, Running: 5, Weight: 1}, Target{ID: "b", Free: 9, Running: 0, Weight: 1}), nil, "a"},
		{"round-robin ignores load", RoundRobin, "", nodes(
			Target{ID: "a", Free: 9, Running: 5}, Target{ID: "b", Free: 9, Running: 0}), nil, "a"},
		{"round-robin skips the full", RoundRobin, "", nodes(
			Target{ID: "a", Free: 0}, Target{ID: "b", Free: 1}), nil, "b"},
		{"random picks a qualified node", Random, "", nodes(
			Target{ID: "a", Free: 0}, Target{ID: "b", Free: 1}, Target{ID: "c", Free: 1, Tags: []string{"x"}}), []string{"x"}, "c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := balancer{local: c.local, rng: rand.New(rand.NewPCG(1, 2))}
			i := b.pick(c.targets, c.tags, c.algorithm)
			got := ""
			if i >= 0 {
				got = c.targets[i].ID
			}
			if got != c.want {
				t.Fatalf("picked %q, want %q", got, c.want)
			}
		})
	}
}

// Over many picks in one pass, with the pass's own accounting (Running grows with each
// assignment), weighted-min-load shares in proportion to the weights, min-load and
// round-robin share equally, and random spreads over every node.
func TestSharesOverAPass(t *testing.T) {
	shares := func(algorithm string, weights ...float64) map[string]int {
		var ts []Target
		for i, w := range weights {
			ts = append(ts, Target{ID: string(rune('a' + i)), Free: 1000, Weight: w})
		}
		b := balancer{rng: rand.New(rand.NewPCG(3, 4))}
		got := map[string]int{}
		for range 700 {
			i := b.pick(ts, nil, algorithm)
			ts[i].Free--
			ts[i].Running++
			got[ts[i].ID]++
		}
		return got
	}
	if got := shares(WeightedMinLoad, 1, 2, 4); got["a"] != 100 || got["b"] != 200 || got["c"] != 400 {
		t.Errorf("weighted-min-load 1:2:4 over 700: %v", got)
	}
	for _, a := range []string{MinLoad, RoundRobin, WeightedMinLoad} {
		if got := shares(a, 1, 1, 1, 1); got["a"] != 175 || got["d"] != 175 {
			t.Errorf("%s over four equal nodes: %v", a, got)
		}
	}
	if got := shares(Random, 1, 1, 1); got["a"] < 150 || got["b"] < 150 || got["c"] < 150 {
		t.Errorf("random over three nodes: %v", got)
	}
}

// At low load weighted-min-load still follows the weights: placing one run at a time on
// idle nodes, each run going away before the next arrives, goes to the heaviest node.
func TestWeightedMinLoadAtLowLoad(t *testing.T) {
	ts := []Target{{ID: "a", Free: 9, Weight: 1}, {ID: "b", Free: 9, Weight: 2}, {ID: "c", Free: 9, Weight: 4}}
	b := balancer{rng: rand.New(rand.NewPCG(5, 6))}
	if i := b.pick(ts, nil, WeightedMinLoad); ts[i].ID != "c" {
		t.Fatalf("first run on idle nodes went to %s, want c (weight 4)", ts[i].ID)
	}
}
