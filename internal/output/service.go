// Package output owns output files: where a node keeps them (Layout), their copies on
// other nodes, fetching a file on demand from a node that holds it, making copies again
// when a holder is lost, and deleting them after retention.
//
// The repository says which nodes hold a verified copy of each output (store.Outputs);
// a node's disk only ever holds files it checked against the SHA-256 recorded with the
// output. The invariants:
//
//   - A copy is recorded only after its bytes were checked, and a copy found corrupt is
//     deleted and its record dropped before anything is served from it.
//   - Copies are driven by every node, not by the primary: each node's copier looks in
//     the repository for outputs of ended runs that need copies (recorded, or whose
//     holder was lost), claims a free slot (the claim is a row; two nodes never fill the
//     same slot, and a claim of a node that dies expires or goes with the node), copies
//     the file from a live holder through the peer client and records itself. Nodes look
//     at the candidates in random order, so the copies land on random nodes among those
//     with free disk. A hint from the producer makes them look at once; without it they
//     look every Poll, so no copy depends on a hint arriving.
//   - A node asked for an output it does not hold fetches it from a live holder, checks
//     it, keeps it (it becomes a holder) and serves it from its disk.
//   - Retention deletes the records of every copy; each node deletes the files the
//     repository no longer lists (also those of a node that comes back after its copies
//     were given up), and records again the good copies it still has.
package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults.
const (
	// PollDefault is how often a copier looks for outputs that need copies.
	PollDefault = time.Second
	// CopiersDefault is how many copies a node makes at once.
	CopiersDefault = 4
	// SweepDefault is how often, at most, a node deletes outputs past retention: every
	// tenth of the retention, at least every 10 minutes.
	SweepDefault = 10 * time.Minute
	// CopiesClusterDefault is how many copies an output gets when neither its job nor
	// output_copies says, on a cluster of more than one node.
	CopiesClusterDefault = 2
	// FreeDiskReserveDefault is the disk a node keeps free beyond a copy it takes.
	FreeDiskReserveDefault = 256 << 20
)

// Store is what the output service reads and writes in the repository.
type Store interface {
	store.Outputs
	RunGet(ctx context.Context, id int64) (store.Run, error)
}

// Params configures a Service.
type Params struct {
	Store   Store
	Log     *slog.Logger
	Node    string // this node's id
	DataDir string
	Peer    *peer.Client
	// Live lists the nodes that are live now (membership's view).
	Live func(ctx context.Context) ([]store.Node, error)
	// Copies is output_copies: the copies an output gets when its job sets none; 0:
	// CopiesClusterDefault on a cluster of more than one live node, else 1.
	Copies    int
	Retention time.Duration
	Now       func() time.Time
	Poll      time.Duration // default PollDefault
	Copiers   int           // default CopiersDefault
	Sweep     time.Duration // default: a tenth of Retention, at most SweepDefault, at least 1s
	// Reserve is the free disk a copy must leave; default FreeDiskReserveDefault.
	Reserve int64
}

// Service is one node's output store.
type Service struct {
	p      Params
	layout Layout
	wake   chan struct{}
	hashes *hashCache
	locks  keyedMutex
}

// New returns a service; Run starts its copier and sweeper.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	p.Poll = cmpOr(p.Poll, PollDefault)
	if p.Copiers <= 0 {
		p.Copiers = CopiersDefault
	}
	if p.Sweep <= 0 {
		p.Sweep = min(SweepDefault, max(p.Retention/10, time.Second))
	}
	if p.Reserve <= 0 {
		p.Reserve = FreeDiskReserveDefault
	}
	return &Service{p: p, layout: NewLayout(p.DataDir), wake: make(chan struct{}, 1), hashes: newHashCache()}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Layout is where this node keeps output files.
func (s *Service) Layout() Layout { return s.layout }

// Hint makes the copier look for outputs that need copies now. It never blocks.
func (s *Service) Hint() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run copies outputs and sweeps this node's disk until ctx ends. The first sweep, at
// start, deletes what the repository no longer lists and records the good copies this
// node still has.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.sweepLoop(ctx) }()
	go func() { defer wg.Done(); s.copyLoop(ctx) }()
	wg.Wait()
	return nil
}

// Target is how many verified copies an output should have: what its job asked for, or
// the cluster's setting, or 2 on a cluster of more than one node; never more than the
// live nodes that take copies, never less than 1.
func Target(jobCopies, clusterCopies, liveNodes int) int {
	n := jobCopies
	if n == 0 {
		n = clusterCopies
	}
	if n == 0 {
		n = 1
		if liveNodes > 1 {
			n = CopiesClusterDefault
		}
	}
	return max(min(n, liveNodes), 1)
}

// view is the cluster as the service judges copies by.
type view struct {
	nodes map[string]store.Node // live nodes
	takes []string              // live nodes that take copies (not draining)
	ids   []string              // every live node id
}

func (s *Service) look(ctx context.Context) (view, error) {
	nodes, err := s.p.Live(ctx)
	if err != nil {
		return view{}, err
	}
	v := view{nodes: map[string]store.Node{}}
	for _, n := range nodes {
		v.nodes[n.ID] = n
		v.ids = append(v.ids, n.ID)
		if n.Mode != "draining" {
			v.takes = append(v.takes, n.ID)
		}
	}
	return v, nil
}

func (v view) live(node string) bool { _, ok := v.nodes[node]; return ok }

// verifiedLive counts the verified copies of o on live nodes.
func (v view) verifiedLive(o store.Output) int {
	n := 0
	for _, h := range o.Holders {
		if h.Verified() && v.live(h.Node) {
			n++
		}
	}
	return n
}

// State of one holder as the API shows it.
const (
	HolderVerified = "verified" // a checked copy on a live node
	HolderCopying  = "copying"  // a copy being made
	HolderDown     = "down"     // a checked copy on a node that is not live
	HolderLost     = "lost"     // the node was declared lost holding it
)

// HolderState is what one holder's copy is worth now.
func (v view) holderState(h store.Holder) string {
	switch {
	case h.LostAt != nil:
		return HolderLost
	case h.VerifiedAt == nil:
		return HolderCopying
	case !v.live(h.Node):
		return HolderDown
	}
	return HolderVerified
}

// Description is an output's copies as the API shows them.
type Description struct {
	Target  int               // copies it should have
	Durable bool              // it has them, verified, on live nodes
	States  map[string]string // holder node → HolderVerified, HolderCopying, HolderDown or HolderLost
}

// Describe says, for each output, how many copies it should have, which holders count
// and whether it is durable.
func (s *Service) Describe(ctx context.Context, outs []store.Output) ([]Description, error) {
	v, err := s.look(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Description, len(outs))
	for i, o := range outs {
		d := Description{Target: Target(o.Copies, s.p.Copies, len(v.takes)), States: map[string]string{}}
		for _, h := range o.Holders {
			d.States[h.Node] = v.holderState(h)
		}
		d.Durable = v.verifiedLive(o) >= d.Target
		out[i] = d
	}
	return out, nil
}

// ErrLost marks an output no live node holds.
var ErrLost = errors.New("output lost")

// lostError says which holder had the output last.
func lostError(o store.Output, v view) error {
	var last *store.Holder
	var down []string
	for i, h := range o.Holders {
		switch {
		case h.LostAt != nil && (last == nil || h.LostAt.After(*last.LostAt)):
			last = &o.Holders[i]
		case h.VerifiedAt != nil && h.LostAt == nil && !v.live(h.Node):
			down = append(down, h.Node)
		}
	}
	switch {
	case len(down) > 0:
		slices.Sort(down)
		return fmt.Errorf("%w: no live holder (held by %v, which are down)", ErrLost, down)
	case last != nil:
		return fmt.Errorf("%w: no live holder (last holder %s, lost at %s)", ErrLost, last.Node, last.LostAt.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%w: no live holder", ErrLost)
}

// keyedMutex serialises work on one output (a fetch on demand and a copy of the same
// file) without holding up the others.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[store.OutputRef]*refLock
}

type refLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(ref store.OutputRef) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[store.OutputRef]*refLock{}
	}
	l := k.locks[ref]
	if l == nil {
		l = &refLock{}
		k.locks[ref] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, ref)
		}
		k.mu.Unlock()
	}
}
