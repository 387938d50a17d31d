package dispatch

import (
	"math/rand/v2"
	"slices"
)

// Load-balancing algorithms (seed: Report Server Cluster). Each chooses among the
// qualified nodes only: those with free capacity and every tag of the job, which stay
// hard constraints.
const (
	RoundRobin      = "round-robin"       // the next qualified node in turn (the default)
	MinLoad         = "min-load"          // the node running the fewest runs
	WeightedMinLoad = "weighted-min-load" // the node with the least running ÷ weight (see pick)
	Random          = "random"            // any qualified node, uniformly
)

// Algorithms lists the algorithms, the default first.
var Algorithms = []string{RoundRobin, MinLoad, WeightedMinLoad, Random}

// AlgorithmDefault is the algorithm when none is configured.
const AlgorithmDefault = RoundRobin

// ValidAlgorithm reports whether name is one of Algorithms.
func ValidAlgorithm(name string) bool { return slices.Contains(Algorithms, name) }

// balancer is the dispatcher's choice of node: its round-robin position persists across
// passes, and Target.Running counts this pass's assignments as they are made (the
// dispatcher's own in-flight accounting), so a burst does not pile onto the node that
// looked idle when the pass began.
type balancer struct {
	next  int // round-robin position
	local string
	rng   *rand.Rand
}

// pick returns the index of the target for a run of a job with tags under algorithm
// (empty: round-robin), -1 when none qualifies.
func (b *balancer) pick(targets []Target, tags []string, algorithm string) int {
	qualified := func(t Target) bool { return t.Free > 0 && hasAll(t.Tags, tags) }
	switch algorithm {
	case MinLoad:
		return b.least(targets, qualified, func(t Target) float64 { return float64(t.Running) })
	case WeightedMinLoad:
		if !weighted(targets) {
			return b.roundRobin(targets, qualified) // no weights set: as the seed says
		}
		// Running ÷ weight, counting half of the run being placed: plain running ÷ weight
		// ties at zero on every idle node and shares equally at low load whatever the
		// weights, and counting all of it favours the heavy nodes. The half is the
		// Sainte-Laguë divisor, the one that apportions in proportion without bias.
		return b.least(targets, qualified, func(t Target) float64 { return (float64(t.Running) + 0.5) / t.weight() })
	case Random:
		var ok []int
		for i, t := range targets {
			if qualified(t) {
				ok = append(ok, i)
			}
		}
		if len(ok) == 0 {
			return -1
		}
		return ok[b.rng.IntN(len(ok))]
	}
	return b.roundRobin(targets, qualified)
}

func (b *balancer) roundRobin(targets []Target, qualified func(Target) bool) int {
	for k := range targets {
		i := (b.next + k) % len(targets)
		if qualified(targets[i]) {
			b.next = i + 1
			return i
		}
	}
	return -1
}

// least returns the qualified target of the lowest load. Ties go to the local node (the
// primary's own: seed, "if the local server is one of the qualified servers, it will be
// given higher priority"), then round-robin from the last pick, so equal nodes share.
func (b *balancer) least(targets []Target, qualified func(Target) bool, load func(Target) float64) int {
	best := -1
	for k := range targets {
		i := (b.next + k) % len(targets)
		t := targets[i]
		if !qualified(t) {
			continue
		}
		switch {
		case best < 0, load(t) < load(targets[best]):
			best = i
		case load(t) == load(targets[best]) && t.ID == b.local && targets[best].ID != b.local:
			best = i
		}
	}
	if best >= 0 {
		b.next = best + 1
	}
	return best
}

// weighted reports whether any target has a weight other than the default.
func weighted(targets []Target) bool {
	return slices.ContainsFunc(targets, func(t Target) bool { return t.weight() != 1 })
}

func (t Target) weight() float64 {
	if t.Weight <= 0 {
		return 1
	}
	return t.Weight
}
