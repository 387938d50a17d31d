package dispatch

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// A pass reads queued runs a page at a time. A page holds the capacity still to fill,
// at least MinPage runs; a pass reads at most MaxPages pages. The runs of a job found
// unplaceable (overlap "queue" with a run out, tags no free node has) are left out of
// the pages after it, so a backlog of such runs at the head of the queue costs one page
// per job, never the runs behind it.
const (
	MinPage  = 32
	MaxPages = 16
)

// PollDefault is how often the dispatcher looks for queued runs when nobody wakes it
// (retries become due, runs queued by other nodes).
const PollDefault = 200 * time.Millisecond

// Target is a node that can take runs.
type Target struct {
	ID      string
	Free    int // runs it can take now
	Running int // runs assigned to or running on it: its load
	Weight  float64
	Tags    []string
}

// Params configures a Dispatcher.
type Params struct {
	Store store.Runs
	Log   *slog.Logger
	Now   func() time.Time
	Epoch int64
	// Targets returns the live nodes and their free capacity, in a stable order.
	Targets func(ctx context.Context) ([]Target, error)
	// Assigned is called with the nodes that were given runs (to wake their workers).
	Assigned func(nodes []string)
	Poll     time.Duration
	// Algorithm returns the cluster's load-balancing algorithm (read from the repository,
	// so every primary uses the same); nil or "": round-robin. A job's own `balance`
	// overrides it.
	Algorithm func(ctx context.Context) string
	// Local is the primary's own node id: min-load algorithms prefer it on ties.
	Local string
	// Rand drives the random algorithm; nil: seeded from the runtime.
	Rand *rand.Rand
}

// Dispatcher assigns queued runs to the nodes with free capacity, by the cluster's (or
// the job's) load-balancing algorithm.
type Dispatcher struct {
	p    Params
	wake chan struct{}
	bal  balancer
}

// New returns a dispatcher; call Run to start it.
func New(p Params) *Dispatcher {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Poll <= 0 {
		p.Poll = PollDefault
	}
	if p.Rand == nil {
		p.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Dispatcher{p: p, wake: make(chan struct{}, 1), bal: balancer{local: p.Local, rng: p.Rand}}
}

// Wake asks the dispatcher to look for queued runs now. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run assigns runs until ctx is canceled (nil) or an assignment is fenced (an error
// wrapping store.ErrFenced: this node is no longer primary).
func (d *Dispatcher) Run(ctx context.Context) error {
	tick := time.NewTicker(d.p.Poll)
	defer tick.Stop()
	for {
		for {
			n, err := d.Once(ctx)
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			if err != nil && ctx.Err() == nil {
				d.p.Log.Warn("dispatch failed", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// Once makes one pass: it reads the queued runs due now and assigns as many as the nodes
// can take. It returns how many it assigned.
//
// Candidates are read in due order a page at a time (see MinPage). A job whose run cannot
// be placed now is skipped for the rest of the pass: free capacity only shrinks within a
// pass, and a job with overlap "queue" gets at most one run out.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	targets, err := d.p.Targets(ctx)
	if err != nil {
		return 0, err
	}
	free := 0
	for _, t := range targets {
		free += t.Free
	}
	if free == 0 {
		return 0, nil
	}
	algorithm := AlgorithmDefault
	if d.p.Algorithm != nil {
		algorithm = cmp.Or(d.p.Algorithm(ctx), AlgorithmDefault)
	}
	now := d.p.Now()
	var as []store.Assignment
	skip := map[int64]bool{}
	list := store.RunListDispatchableParams{Now: now}
	for page := 0; len(as) < free && page < MaxPages; page++ {
		list.Limit = max(free-len(as), MinPage)
		cands, err := d.p.Store.RunListDispatchable(ctx, list)
		if err != nil {
			return 0, err
		}
		for _, c := range cands {
			if len(as) == free {
				break
			}
			id := c.Run.JobID
			if skip[id] {
				continue
			}
			if c.Spec.Overlap == job.OverlapQueue && c.Active > 0 {
				skipJob(&list, skip, id)
				continue
			}
			i := d.bal.pick(targets, c.Spec.Tags, cmp.Or(c.Spec.Balance, algorithm))
			if i < 0 {
				skipJob(&list, skip, id)
				continue
			}
			targets[i].Free--
			targets[i].Running++
			as = append(as, store.Assignment{RunID: c.Run.ID, Node: targets[i].ID, Token: newToken()})
			if c.Spec.Overlap == job.OverlapQueue {
				skipJob(&list, skip, id) // its one run is out now
			}
		}
		if len(cands) < list.Limit {
			break // no more due runs
		}
		last := cands[len(cands)-1].Run
		list.AfterNotBefore, list.AfterID = last.NotBefore, last.ID
	}
	if len(as) == 0 {
		return 0, nil
	}
	n, err := d.p.Store.RunAssign(ctx, store.RunAssignParams{Epoch: d.p.Epoch, Now: now, Assignments: as, Start: true})
	if err != nil {
		return 0, err
	}
	if d.p.Assigned != nil {
		var nodes []string
		for _, a := range as {
			if !slices.Contains(nodes, a.Node) {
				nodes = append(nodes, a.Node)
			}
		}
		d.p.Assigned(nodes)
	}
	return n, nil
}

// skipJob leaves the job's runs out of the rest of the pass.
func skipJob(list *store.RunListDispatchableParams, skip map[int64]bool, id int64) {
	skip[id] = true
	list.SkipJobs = append(list.SkipJobs, id)
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
