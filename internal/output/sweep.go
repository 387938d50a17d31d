package output

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// partialMaxAge is how old a partial file gets before a sweep deletes it (a transfer of
// a process that died).
const partialMaxAge = time.Hour

// sweepPage is how many runs' records a sweep reads per query.
const sweepPage = 500

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.p.Sweep)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.p.Log.Warn("output sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep removes the records of outputs past retention (of every copy, whichever node
// does it first), then deletes the files on this node's disk that the repository no
// longer lists, and records again the good copies it lists but does not count as this
// node's (a node that comes back after it was declared lost).
func (s *Service) Sweep(ctx context.Context) error {
	gone, err := s.p.Store.OutputExpire(ctx, store.OutputExpireParams{Before: s.p.Now().Add(-s.p.Retention)})
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		s.p.Log.Info("outputs past retention expired", "files", len(gone))
	}
	return s.reconcile(ctx)
}

// reconcile compares this node's disk with the repository's records.
func (s *Service) reconcile(ctx context.Context) error {
	entries, err := os.ReadDir(s.layout.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", s.layout.Root, err)
	}
	var runs []int64
	for _, e := range entries {
		if e.Name() == filepath.Base(s.layout.partialDir()) {
			s.sweepPartial()
			continue
		}
		if id, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && e.IsDir() && id > 0 {
			runs = append(runs, id)
		}
	}
	var errs []error
	for page := range slices.Chunk(runs, sweepPage) {
		if err := s.reconcileRuns(ctx, page); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) reconcileRuns(ctx context.Context, ids []int64) error {
	listed, err := s.listed(ctx, ids)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		files, err := s.filesOf(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var unlisted []store.OutputRef
		for _, ref := range files {
			o, ok := listed[ref]
			switch {
			case !ok:
				unlisted = append(unlisted, ref)
			case !s.holds(o):
				s.recover(ctx, o)
			}
		}
		if len(unlisted) == 0 {
			continue
		}
		// Files of a run still running are its attempt's, not yet recorded; a run that
		// ended had its outputs recorded when it ended, so what is not listed once it is
		// known to have ended (read after the run) is not wanted.
		run, err := s.p.Store.RunGet(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if err == nil && !run.State.Final() {
			continue
		}
		again, err := s.listed(ctx, []int64{id})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed := 0
		for _, ref := range unlisted {
			if _, ok := again[ref]; !ok {
				s.removeFile(ref)
				removed++
			}
		}
		if removed > 0 {
			s.p.Log.Info(fmt.Sprintf("deleted %d output files of run %d that the repository no longer lists", removed, id))
		}
		s.pruneDirs(s.layout.RunDir(id))
	}
	return errors.Join(errs...)
}

// recover checks a file the repository lists without counting this node's copy, and
// records it if it is good (else deletes it).
func (s *Service) recover(ctx context.Context, o store.Output) {
	unlock := s.locks.lock(o.Ref())
	defer unlock()
	f, err := s.checkLocal(o)
	switch {
	case err == nil:
		f.Close()
		s.record(ctx, o)
		s.p.Log.Info(fmt.Sprintf("recorded this node's copy of output %s again (checked)", o.Ref()))
	case errors.Is(err, errCorrupt):
		s.discard(ctx, o, err)
	}
}

func (s *Service) listed(ctx context.Context, ids []int64) (map[store.OutputRef]store.Output, error) {
	outs, err := s.p.Store.OutputFind(ctx, store.OutputFindParams{RunIDs: ids, Limit: 1 << 20})
	if err != nil {
		return nil, err
	}
	m := make(map[store.OutputRef]store.Output, len(outs))
	for _, o := range outs {
		m[o.Ref()] = o
	}
	return m, nil
}

// filesOf lists the output files on disk of one run.
func (s *Service) filesOf(runID int64) ([]store.OutputRef, error) {
	var refs []store.OutputRef
	dir := s.layout.RunDir(runID)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		att, name, ok := strings.Cut(filepath.ToSlash(rel), "/")
		n, aerr := strconv.Atoi(att)
		if !ok || aerr != nil {
			return nil
		}
		refs = append(refs, store.OutputRef{RunID: runID, Attempt: n, Name: name})
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return refs, err
}

func (s *Service) removeFile(ref store.OutputRef) {
	path := s.layout.File(ref)
	s.hashes.forget(path)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.p.Log.Warn("cannot delete an output file", "path", path, "err", err)
	}
}

// pruneDirs removes the empty directories under dir, and dir if it ends up empty.
func (s *Service) pruneDirs(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		_ = os.Remove(d) // fails on a directory that is not empty: kept
	}
}

func (s *Service) sweepPartial() {
	entries, err := os.ReadDir(s.layout.partialDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > partialMaxAge {
			_ = os.Remove(filepath.Join(s.layout.partialDir(), e.Name()))
		}
	}
}
