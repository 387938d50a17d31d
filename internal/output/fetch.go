package output

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
)

// hashCache remembers the digest of files this node checked, by path, size and
// modification time, so a file is read for its hash once, not per download. A file
// changed on disk (a corrupted copy) has another size or time and is hashed again.
type hashCache struct {
	mu sync.Mutex
	m  map[string]hashed
}

type hashed struct {
	size  int64
	mtime time.Time
	sum   string
}

func newHashCache() *hashCache { return &hashCache{m: map[string]hashed{}} }

func (c *hashCache) get(path string, fi os.FileInfo) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[path]
	if !ok || h.size != fi.Size() || !h.mtime.Equal(fi.ModTime()) {
		return "", false
	}
	return h.sum, true
}

func (c *hashCache) put(path string, fi os.FileInfo, sum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[path] = hashed{size: fi.Size(), mtime: fi.ModTime(), sum: sum}
}

func (c *hashCache) forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, path)
}

// Remember notes the SHA-256 of this node's file of ref, computed as it was kept (by the
// worker that collected it), so serving it does not read it for its digest again. The
// file is stat'ed now: a later change to it is seen by its size or time.
func (s *Service) Remember(ref store.OutputRef, sum string) {
	path := s.layout.File(ref)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		s.hashes.put(path, fi, sum)
	}
}

// errCorrupt marks a local file whose bytes do not match the output's record.
var errCorrupt = errors.New("corrupt copy")

// checkLocal opens this node's file of o if its size and SHA-256 match o's record. A
// missing file is fs.ErrNotExist; a mismatching one errCorrupt.
func (s *Service) checkLocal(o store.Output) (*os.File, error) {
	path := s.layout.File(o.Ref())
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("output %s: not a regular file: %w", o.Ref(), errCorrupt)
	}
	if fi.Size() != o.Size {
		f.Close()
		return nil, fmt.Errorf("output %s: %d bytes on disk, %d recorded: %w", o.Ref(), fi.Size(), o.Size, errCorrupt)
	}
	sum, ok := s.hashes.get(path, fi)
	if !ok {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("hash output %s: %w", o.Ref(), err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		s.hashes.put(path, fi, sum)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	if sum != o.SHA256 {
		f.Close()
		return nil, fmt.Errorf("output %s: SHA-256 on disk %s, recorded %s: %w", o.Ref(), short(sum), short(o.SHA256), errCorrupt)
	}
	return f, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// discard deletes this node's copy of o and its record: found corrupt (or unwanted).
func (s *Service) discard(ctx context.Context, o store.Output, why error) {
	path := s.layout.File(o.Ref())
	s.hashes.forget(path)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.p.Log.Warn("cannot delete a bad copy", "output", o.Ref().String(), "err", err)
	}
	if err := s.p.Store.OutputHolderDrop(ctx, o.Ref(), s.p.Node); err != nil {
		s.p.Log.Warn("cannot drop this node's record of a bad copy", "output", o.Ref().String(), "err", err)
	}
	s.p.Log.Warn(fmt.Sprintf("deleted this node's copy of output %s: %v", o.Ref(), why))
}

// holds reports whether this node is a verified holder of o.
func (s *Service) holds(o store.Output) bool {
	for _, h := range o.Holders {
		if h.Node == s.p.Node && h.Verified() {
			return true
		}
	}
	return false
}

// Open returns this node's checked copy of o, open for reading, fetching the file from a
// live holder first when this node has none (or has a corrupt one): the node keeps the
// copy and becomes a holder. An output no live node holds is ErrLost.
func (s *Service) Open(ctx context.Context, o store.Output) (*os.File, error) {
	return s.OpenOrStream(ctx, o, nil)
}

// ErrStreamed marks a failure after part of a file was streamed: the answer is spoiled
// and nothing can be said in it any more.
var ErrStreamed = errors.New("failed while streaming")

// OpenOrStream is Open for a download of the whole file: when this node must fetch it,
// the bytes go to the writer begin returns (called once, when a holder started sending)
// as they arrive, besides the copy kept; it then returns a nil file. The receiver checks
// the bytes against the SHA-256 it was given: a mismatch found at the end fails the
// fetch with ErrStreamed and keeps nothing.
func (s *Service) OpenOrStream(ctx context.Context, o store.Output, begin func() io.Writer) (*os.File, error) {
	unlock := s.locks.lock(o.Ref())
	defer unlock()
	f, err := s.checkLocal(o)
	if err == nil {
		if !s.holds(o) {
			s.record(ctx, o) // a good copy the repository did not count (this node was lost)
		}
		return f, nil
	}
	if errors.Is(err, errCorrupt) {
		s.discard(ctx, o, err)
	}
	v, err := s.look(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch output %s: %w", o.Ref(), err)
	}
	var tee *teeOnce
	if begin != nil {
		tee = &teeOnce{begin: begin}
	}
	if err := s.fetch(ctx, o, v, tee); err != nil {
		return nil, err
	}
	s.record(ctx, o)
	if tee != nil && tee.w != nil {
		return nil, nil
	}
	return s.checkLocal(o)
}

// teeOnce is where a fetch also sends the bytes it receives, opened at the first byte.
type teeOnce struct {
	begin func() io.Writer
	w     io.Writer
}

func (t *teeOnce) Write(p []byte) (int, error) {
	if t.w == nil {
		t.w = t.begin()
	}
	return t.w.Write(p)
}

// record makes this node a verified holder of o.
func (s *Service) record(ctx context.Context, o store.Output) {
	v, err := s.look(ctx)
	if err != nil {
		s.p.Log.Warn("cannot record this node's copy", "output", o.Ref().String(), "err", err)
		return
	}
	err = store.OutputHolderAdd(ctx, s.p.Store, store.OutputHolderAddParams{Ref: o.Ref(), Node: s.p.Node, Live: v.ids,
		Target: Target(o.Copies, s.p.Copies, len(v.takes))})

	if err != nil {
		s.p.Log.Warn("cannot record this node's copy", "output", o.Ref().String(), "err", err)
	}
}

// fetch copies o from a live holder into this node's layout, checking its size and
// SHA-256; a holder whose copy does not check out is passed over for the next.
func (s *Service) fetch(ctx context.Context, o store.Output, v view, tee *teeOnce) error {
	var from []store.Node
	for _, h := range o.Holders {
		if nd, ok := v.nodes[h.Node]; ok && h.Verified() && h.Node != s.p.Node {
			from = append(from, nd)
		}
	}
	if len(from) == 0 {
		return lostError(o, v)
	}
	rand.Shuffle(len(from), func(i, j int) { from[i], from[j] = from[j], from[i] })
	var errs []error
	for _, nd := range from {
		err := s.fetchFrom(ctx, o, nd.Address, tee)
		if err == nil {
			return nil
		}
		if tee != nil && tee.w != nil {
			return fmt.Errorf("fetch output %s from node %s: %w: %w", o.Ref(), nd.ID, ErrStreamed, err)
		}
		s.p.Log.Warn(fmt.Sprintf("copy of output %s from node %s failed", o.Ref(), nd.ID), "err", err)
		errs = append(errs, fmt.Errorf("from node %s: %w", nd.ID, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("fetch output %s: %w", o.Ref(), errors.Join(errs...))
}

// transferTimeout bounds one transfer: generous for a slow link, finite for a stalled one.
func transferTimeout(size int64) time.Duration {
	return time.Minute + time.Duration(size/(1<<20))*time.Second // at least 1 MiB/s
}

// fetchFrom streams o from the node at addr into a partial file, hashing as it goes,
// and moves it into place once size and SHA-256 match. Memory stays flat.
func (s *Service) fetchFrom(ctx context.Context, o store.Output, addr string, tee *teeOnce) error {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(o.Size))
	defer cancel()
	resp, err := s.p.Peer.OutputOpen(ctx, addr, o.Ref())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tag [8]byte
	_, _ = crand.Read(tag[:])
	tmp := filepath.Join(s.layout.partialDir(), hex.EncodeToString(tag[:]))
	// The directories are made when missing, not checked on every copy.
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, FileMode)
	if errors.Is(err, os.ErrNotExist) {
		if err := mkdirs(s.layout.Root, s.layout.partialDir()); err != nil {
			return fmt.Errorf("partial directory: %w", err)
		}
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, FileMode)
	}
	if err != nil {
		return fmt.Errorf("partial file: %w", err)
	}
	defer os.Remove(tmp) // gone once renamed
	h := sha256.New()
	var also io.Writer = h
	if tee != nil {
		also = io.MultiWriter(h, tee)
	}
	// No fsync: a copy the host lost in a crash is found by its hash when next read,
	// and deleted, like any corrupt copy.
	n, err := receive(f, io.LimitReader(resp.Body, o.Size+1), also)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != o.Size || sum != o.SHA256 {
		return fmt.Errorf("received %d bytes with SHA-256 %s; recorded %d bytes, %s: %w", n, short(sum), o.Size, short(o.SHA256), errCorrupt)
	}
	path := s.layout.File(o.Ref())
	err = os.Rename(tmp, path)
	if errors.Is(err, os.ErrNotExist) {
		if err := mkdirs(s.layout.Root, filepath.Dir(path)); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("keep the copy: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		s.hashes.put(path, fi, o.SHA256)
	}
	return nil
}

// ServeCopy serves this node's own copy of the output ref to another node; it never
// fetches. 404 when this node has no copy or one known to be bad. A file this node
// checked or received, unchanged since (by size and time), is sent by the kernel
// (sendfile) without reading its record: the receiver checks the bytes against its own.
// A copy not yet checked is hashed as it is sent (one read, not two), and a mismatch
// found here deletes this node's copy.
func (s *Service) ServeCopy(w http.ResponseWriter, r *http.Request, ref store.OutputRef) {
	if !filepath.IsLocal(filepath.FromSlash(ref.Name)) {
		http.Error(w, fmt.Sprintf("output %s: no such output", ref), http.StatusNotFound)
		return
	}
	path := s.layout.File(ref)
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "no good copy", http.StatusNotFound)
		return
	}
	if sum, known := s.hashes.get(path, fi); known {
		serveHeader(w, fi.Size(), sum)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, f)
		}
		return
	}
	o, err := s.find(r.Context(), ref)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if fi.Size() != o.Size {
		s.discardLocked(r.Context(), o, fmt.Errorf("output %s: not a regular file of %d bytes: %w", ref, o.Size, errCorrupt))
		http.Error(w, "no good copy", http.StatusNotFound)
		return
	}
	serveHeader(w, o.Size, o.SHA256)
	if r.Method == http.MethodHead {
		return
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), f)
	if err != nil || n != o.Size {
		return // the receiver saw a short answer
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
		s.discardLocked(context.WithoutCancel(r.Context()), o, fmt.Errorf("output %s: SHA-256 on disk %s, recorded %s: %w", ref, short(got), short(o.SHA256), errCorrupt))
		return
	}
	s.hashes.put(path, fi, o.SHA256)
}

func serveHeader(w http.ResponseWriter, size int64, sum string) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set(peer.SHA256Header, sum)
}

// discardLocked is discard under the output's lock.
func (s *Service) discardLocked(ctx context.Context, o store.Output, why error) {
	unlock := s.locks.lock(o.Ref())
	defer unlock()
	s.discard(ctx, o, why)
}

// find reads the record of one output (of any attempt).
func (s *Service) find(ctx context.Context, ref store.OutputRef) (store.Output, error) {
	outs, err := s.p.Store.OutputFind(ctx, store.OutputFindParams{RunID: ref.RunID})
	if err != nil {
		return store.Output{}, err
	}
	for _, o := range outs {
		if o.Ref() == ref {
			return o, nil
		}
	}
	return store.Output{}, fmt.Errorf("output %s: %w", ref, store.ErrNotFound)
}
