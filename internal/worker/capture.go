package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// capture keeps the first limit bytes written to it and silently drops the rest,
// recording that it did. Writes never fail and never block, so a chatty child is never
// stalled on a full pipe and memory stays bounded by the limit. Only the head of a
// stream is kept: it is the cheapest rule to explain, and the full output, when it
// matters, belongs in a file under the output directory rather than on stdout.
type capture struct {
	limit int64

	mu        sync.Mutex // written by a drain goroutine, read by the executor
	data      []byte
	truncated bool
}

func newCapture(limit int64) *capture { return &capture{limit: limit} }

// Write implements io.Writer; it always reports the whole of p as written.
func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - int64(len(c.data))
	if int64(len(p)) > room {
		c.truncated = true
		p = p[:max(room, 0)]
	}
	if need := len(c.data) + len(p); need > cap(c.data) {
		// Grow by doubling as append would, but never past the limit.
		grown := make([]byte, len(c.data), min(max(2*cap(c.data), need), int(c.limit)))
		copy(grown, c.data)
		c.data = grown
	}
	c.data = append(c.data, p...)
	return n, nil
}

// bytes returns what was kept and whether anything was dropped.
func (c *capture) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data, c.truncated
}

// CollectOutputs lists the regular files under dir, recursively, sorted by their slash
// separated path relative to dir, with size and SHA-256. Symlinks and other non-regular
// files are skipped: a job must not be able to publish files from outside its directory.
func CollectOutputs(dir string) ([]OutputFile, error) {
	var outs []OutputFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories are walked into; symlinks are not followed
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return fmt.Errorf("relate path: %w", err)
		}
		out, err := hashFile(path)
		if err != nil {
			return err
		}
		out.Name = filepath.ToSlash(rel)
		outs = append(outs, out)
		return nil
	})
	if err != nil {
		return outs, fmt.Errorf("walk output dir: %w", err)
	}
	// WalkDir's order is per directory ("a/b" before "a.txt"); sort on the whole name.
	slices.SortFunc(outs, func(a, b OutputFile) int { return strings.Compare(a.Name, b.Name) })
	return outs, nil
}

// hashFile reads the file once for both its size and its digest, so the two agree.
func hashFile(path string) (OutputFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return OutputFile{}, fmt.Errorf("open output: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return OutputFile{}, fmt.Errorf("hash output: %w", err)
	}
	return OutputFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
