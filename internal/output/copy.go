package output

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
		}
	}
}

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
	work := make(chan store.Output)
	var wg sync.WaitGroup
	for range s.p.Copiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				s.copyOne(ctx, o, v)
			}
		}()
	}
	for _, o := range pending {
		target := Target(o.Copies, s.p.Copies, len(v.takes))
		have := v.verifiedLive(o)
		switch {
		case have >= target:
			settle = append(settle, o.Ref())
		case !takes || self.ID == "" || s.holds(o) || have == 0 && !s.hasFile(o):
			// Not this node's to take: it holds a copy, it does not take copies, or no
			// live node has one (it stays listed: a holder may come back).
		case !s.roomFor(o.Size):
		default:
			select {
			case work <- o:
			case <-ctx.Done():
			}
		}
	}
	close(work)
	wg.Wait()
	return s.p.Store.OutputSettle(ctx, settle)
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

// copyOne claims a slot of o, makes the copy (from the file already on disk if it is
// good, else from a live holder) and records it; a failed copy gives its slot back.
func (s *Service) copyOne(ctx context.Context, o store.Output, v view) {
	target := Target(o.Copies, s.p.Copies, len(v.takes))
	err := s.p.Store.OutputClaim(ctx, store.OutputClaimParams{Ref: o.Ref(), Node: s.p.Node, Live: v.ids, Target: target,
		TTL: transferTimeout(o.Size) + time.Minute})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return // another node took the slot, or the output expired
	}
	if err != nil {
		s.p.Log.Warn("cannot claim a copy slot", "output", o.Ref().String(), "err", err)
		return
	}
	unlock := s.locks.lock(o.Ref())
	defer unlock()
	start := time.Now()
	f, err := s.checkLocal(o)
	if err == nil {
		f.Close()
	} else {
		err = s.fetch(ctx, o, v)
	}
	if err == nil {
		err = s.p.Store.OutputHolderAdd(ctx, store.OutputHolderAddParams{Ref: o.Ref(), Node: s.p.Node, Live: v.ids, Target: target})
		if errors.Is(err, store.ErrNotFound) { // expired meanwhile
			s.removeFile(o.Ref())
			return
		}
	}
	if err != nil {
		s.p.Log.Warn(fmt.Sprintf("could not copy output %s", o.Ref()), "err", err)
		if derr := s.p.Store.OutputHolderDrop(context.WithoutCancel(ctx), o.Ref(), s.p.Node); derr != nil {
			s.p.Log.Warn("cannot give the copy slot back; it expires", "output", o.Ref().String(), "err", derr)
		}
		return
	}
	s.p.Log.Debug("output copied", "output", o.Ref().String(), "bytes", o.Size, "took", time.Since(start))
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
