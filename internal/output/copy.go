package output

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// pendingPage is how many outputs that need copies a copier reads per look.
const pendingPage = 500

func (s *Service) copyLoop(ctx context.Context) {
	t := time.NewTicker(s.p.Poll)
	defer t.Stop()
	for {
		if err := s.CopyOnce(ctx); err != nil && ctx.Err() == nil {
			s.p.Log.Warn("looking for outputs to copy failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			// Hints come with every batch of results: those of the next moment are
			// taken together, so a busy cluster does not read its pending outputs
			// once per batch on every node.
			select {
			case <-ctx.Done():
				return
			case <-time.After(hintCoalesce):
			}
		}
	}
}

// hintCoalesce is how long a copier waits after a hint before it looks.
const hintCoalesce = 100 * time.Millisecond

// CopyOnce looks once for outputs that need copies and makes those this node can take
// (at most Copiers at a time). Outputs that have all the copies the live nodes allow
// are marked as needing none.
func (s *Service) CopyOnce(ctx context.Context) error {
	v, err := s.look(ctx)
	if err != nil {
		return err
	}
	pending, err := s.p.Store.OutputFind(ctx, store.OutputFindParams{NeedsCopies: true, Limit: pendingPage})
	if err != nil {
		return err
	}
	rand.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	self, takes := v.nodes[s.p.Node], false
	for _, id := range v.takes {
		takes = takes || id == s.p.Node
	}
	var settle []store.OutputRef
	var chosen []store.Output
	for _, o := range pending {
		target := Target(o.Copies, s.p.Copies, len(v.takes))
		have := v.verifiedLive(o)
		switch {
		case have >= target:
			settle = append(settle, o.Ref())
		case !takes || self.ID == "" || s.holds(o) || have == 0 && !s.hasFile(o):
			// Not this node's to take: it holds a copy, it does not take copies, or no
			// live node has one (it stays listed: a holder may come back).
		case !s.mine(o, v, target, have):
		case !s.roomFor(o.Size):
		default:
			chosen = append(chosen, o)
		}
	}
	for len(chosen) > 0 && ctx.Err() == nil {
		n := min(len(chosen), copyBatchSize)
		s.copyBatch(ctx, chosen[:n], v)
		chosen = chosen[n:]
	}
	return s.p.Store.OutputSettle(ctx, settle)
}

// copyBatchSize is how many copies a copier claims, and then records, in one transaction
// each: a busy cluster makes a copy of every run's output, and two transactions per copy
// would cost the repository more than the copy costs the disk.
const copyBatchSize = 64

// copyBatch claims a slot of each output in one transaction, makes the copies it got
// (Copiers at a time: from the file already on disk if it is good, else from a live
// holder), and records those made in one transaction; a failed copy gives its slot back.
func (s *Service) copyBatch(ctx context.Context, outs []store.Output, v view) {
	claims := make([]store.OutputClaimParams, len(outs))
	for i, o := range outs {
		claims[i] = store.OutputClaimParams{Ref: o.Ref(), Node: s.p.Node, Live: v.ids, Target: Target(o.Copies, s.p.Copies, len(v.takes)),
			TTL: transferTimeout(o.Size) + time.Minute}
	}
	errs, err := s.p.Store.OutputClaimBatch(ctx, claims)
	if err != nil {
		s.p.Log.Warn("cannot claim copy slots", "outputs", len(outs), "err", err)
		return
	}
	work := make(chan int)
	made := make([]bool, len(outs))
	var wg sync.WaitGroup
	for range s.p.Copiers {
		wg.Go(func() {
			for i := range work {
				made[i] = s.copyOne(ctx, outs[i], v)
			}
		})
	}
	for i := range outs {
		if errs[i] != nil {
			continue // another node took the slot, or the output expired
		}
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	var adds []store.OutputHolderAddParams
	var refs []store.Output
	for i, o := range outs {
		if made[i] {
			adds = append(adds, store.OutputHolderAddParams{Ref: o.Ref(), Node: s.p.Node, Live: v.ids, Target: claims[i].Target})
			refs = append(refs, o)
		}
	}
	if len(adds) == 0 {
		return
	}
	errs, err = s.p.Store.OutputHolderAddBatch(ctx, adds)
	for i, o := range refs {
		e := err
		if e == nil {
			e = errs[i]
		}
		switch {
		case e == nil:
			s.p.Log.Debug("output copied", "output", o.Ref().String(), "bytes", o.Size)
		case errors.Is(e, store.ErrNotFound): // expired meanwhile
			s.removeFile(o.Ref())
		default:
			s.p.Log.Warn(fmt.Sprintf("could not record the copy of output %s", o.Ref()), "err", e)
			s.giveBack(ctx, o)
		}
	}
}

// handoverDelay is how long an output waits for the nodes it was given to before any
// node with room takes it.
func (s *Service) handoverDelay() time.Duration { return 3 * s.p.Poll }

// mine reports whether this node should try to copy o now. The nodes that should are the
// first of the live nodes without a copy or a claim, in an order drawn at random per
// output (rendezvous hashing, so every node draws the same order without talking), as
// many as copies are missing: they rarely meet on a claim. Once the output has waited
// handoverDelay (since it ended, or since its last holder was lost), any node tries:
// a chosen node that is full, slow or gone holds nothing up.
func (s *Service) mine(o store.Output, v view, target, have int) bool {
	now := s.p.Now()
	since := o.CreatedAt
	busy := map[string]bool{}
	for _, h := range o.Holders {
		if h.LostAt != nil && h.LostAt.After(since) {
			since = *h.LostAt
		}
		if h.Verified() || h.VerifiedAt == nil && h.ClaimUntil != nil && h.ClaimUntil.After(now) {
			busy[h.Node] = true
		}
	}
	if now.Sub(since) >= s.handoverDelay() {
		return true
	}
	var free []string
	for _, id := range v.takes {
		if !busy[id] {
			free = append(free, id)
		}
	}
	key := o.Ref().String()
	slices.SortFunc(free, func(a, b string) int { return cmp.Compare(rank(key, a), rank(key, b)) })
	need := target - have
	for _, h := range o.Holders {
		if h.VerifiedAt == nil && busy[h.Node] {
			need-- // being made
		}
	}
	return slices.Index(free, s.p.Node) >= 0 && slices.Index(free, s.p.Node) < need
}

func rank(key, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return h.Sum64()
}

// hasFile reports whether this node has a file where o's copy would be (it may be a
// copy from before this node was lost).
func (s *Service) hasFile(o store.Output) bool {
	f, err := s.checkLocal(o)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// copyOne makes the copy of o this node claimed, from the file already on disk if it
// is good, else from a live holder; a failed copy gives its slot back.
func (s *Service) copyOne(ctx context.Context, o store.Output, v view) bool {
	unlock := s.locks.lock(o.Ref())
	defer unlock()
	start := time.Now()
	f, err := s.checkLocal(o)
	if err == nil {
		f.Close()
	} else {
		err = s.fetch(ctx, o, v, nil)
	}
	if err != nil {
		s.p.Log.Warn(fmt.Sprintf("could not copy output %s", o.Ref()), "err", err)
		s.giveBack(ctx, o)
		return false
	}
	s.p.Log.Debug("output fetched", "output", o.Ref().String(), "bytes", o.Size, "took", time.Since(start))
	return true
}

// giveBack drops this node's claim (or copy) of o, so another node may make it.
func (s *Service) giveBack(ctx context.Context, o store.Output) {
	if derr := s.p.Store.OutputHolderDrop(context.WithoutCancel(ctx), o.Ref(), s.p.Node); derr != nil {
		s.p.Log.Warn("cannot give the copy slot back; it expires", "output", o.Ref().String(), "err", derr)
	}
}

// roomFor reports whether this node's disk can take a copy of size bytes and keep its
// reserve free.
func (s *Service) roomFor(size int64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.p.DataDir, &st); err != nil {
		return true // cannot tell: try, the copy fails cleanly if the disk is full
	}
	return int64(st.Bavail)*int64(st.Bsize) >= size+s.p.Reserve
}
