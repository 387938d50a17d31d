package channel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandemhq/tandem/internal/job"
)

// Directory copies the outputs into a directory. Each file is written under a
// temporary name in the same directory and renamed into place, so a reader sees the
// whole file or none of it. With overwrite off, a file of that name that is there
// already is left alone: the same bytes (a repeated delivery) count as delivered,
// other bytes fail the delivery for good.
type Directory struct{}

// Send implements Sender.
func (Directory) Send(ctx context.Context, d job.Deliver, m Message) (Result, error) {
	d.Default()
	dir, err := render("directory", d.Directory, m.Data)
	if err != nil {
		return Result{}, err
	}
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return Result{}, fmt.Errorf("directory %q is not an absolute path: %w", dir, ErrPermanent)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("create directory: %w", err)
	}
	var wrote, kept []string
	for _, f := range selected(d, m.Files) {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			return Result{}, fmt.Errorf("output name %q leaves the directory: %w", f.Name, ErrPermanent)
		}
		same, err := copyInto(ctx, dir, f, m.Key, *d.Overwrite)
		if err != nil {
			return Result{}, err
		}
		if same {
			kept = append(kept, f.Name)
		} else {
			wrote = append(wrote, f.Name)
		}
	}
	resp := fmt.Sprintf("%d files written to %s", len(wrote), dir)
	if len(kept) > 0 {
		resp += fmt.Sprintf(", %d already there (%s)", len(kept), strings.Join(kept, ", "))
	}
	return Result{Response: resp}, nil
}

// copyInto writes f into dir, through a temporary name, and reports whether an
// identical file was there already (overwrite off).
func copyInto(ctx context.Context, dir string, f File, key string, overwrite bool) (bool, error) {
	final := filepath.Join(dir, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return false, fmt.Errorf("create directory: %w", err)
	}
	if !overwrite {
		if same, err := sameFile(final, f.SHA256); err != nil || same {
			return same, err
		}
	}
	rc, err := f.Open(ctx)
	if err != nil {
		return false, fmt.Errorf("open output %s: %w", f.Name, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+"."+key+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	defer os.Remove(tmp.Name()) // gone already once renamed or linked
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if n != f.Size || (f.SHA256 != "" && hex.EncodeToString(h.Sum(nil)) != f.SHA256) {
		return false, fmt.Errorf("copy of output %s is not what the run recorded (%d bytes, recorded %d)", f.Name, n, f.Size)
	}
	if overwrite {
		if err := os.Rename(tmp.Name(), final); err != nil {
			return false, fmt.Errorf("rename into %s: %w", final, err)
		}
		return false, nil
	}
	// A hard link never replaces: if another writer got there first, it says so.
	if err := os.Link(tmp.Name(), final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return sameFile(final, f.SHA256)
		}
		return false, fmt.Errorf("link into %s: %w", final, err)
	}
	return false, nil
}

// sameFile reports whether path exists with the given SHA-256; a file of other
// contents is a permanent error (overwrite is off).
func sameFile(path, sum string) (bool, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) == sum {
		return true, nil
	}
	return false, fmt.Errorf("%s exists with other contents and overwrite is off: %w", path, ErrPermanent)
}
