package output

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tandemhq/tandem/internal/store"
)

// Permissions of what this package creates: owner only.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// Layout is where a node keeps output files: DATA_DIR/outputs/RUN/ATTEMPT/NAME, and
// copies being received under DATA_DIR/outputs/.partial until they are checked.
type Layout struct{ Root string }

// NewLayout is the layout of a node's data directory.
func NewLayout(dataDir string) Layout { return Layout{Root: filepath.Join(dataDir, "outputs")} }

// RunDir holds every attempt's outputs of a run.
func (l Layout) RunDir(runID int64) string {
	return filepath.Join(l.Root, strconv.FormatInt(runID, 10))
}

// AttemptDir is the output directory of one attempt ($TANDEM_OUTPUT_DIR).
func (l Layout) AttemptDir(runID int64, attempt int) string {
	return filepath.Join(l.RunDir(runID), strconv.Itoa(attempt))
}

// File is where an output's file is kept.
func (l Layout) File(ref store.OutputRef) string {
	return filepath.Join(l.AttemptDir(ref.RunID, ref.Attempt), filepath.FromSlash(ref.Name))
}

func (l Layout) partialDir() string { return filepath.Join(l.Root, ".partial") }

// PrepareAttempt makes an empty output directory for an attempt (owner only) and
// returns it; what an earlier process of this node left there is removed.
func (l Layout) PrepareAttempt(runID int64, attempt int) (string, error) {
	dir := l.AttemptDir(runID, attempt)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("output directory: %w", err)
	}
	if err := mkdirs(l.Root, dir); err != nil {
		return "", fmt.Errorf("output directory: %w", err)
	}
	return dir, nil
}

// mkdirs makes dir and the directories between root and it, owner only (MkdirAll with
// a mode is subject to the umask and leaves existing directories as they are).
func mkdirs(root, dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := os.Chmod(d, DirMode); err != nil {
			return err
		}
		if d == root || len(d) <= len(root) || d == filepath.Dir(d) {
			return nil
		}
	}
}

// SealFiles makes the files of an attempt's outputs owner only (a command creates them
// with its own umask).
func (l Layout) SealFiles(runID int64, attempt int, names []string) error {
	for _, n := range names {
		if err := os.Chmod(l.File(store.OutputRef{RunID: runID, Attempt: attempt, Name: n}), FileMode); err != nil {
			return fmt.Errorf("output %s: %w", n, err)
		}
	}
	return nil
}

// Limit is the check of an attempt's outputs against output_max_bytes.
func Limit(sizes []int64, max int64) error {
	var total int64
	for _, s := range sizes {
		total += s
	}
	if max > 0 && total > max {
		return fmt.Errorf("outputs over output_max_bytes: %d files of %d bytes in all, more than the %d bytes a run may keep; they were discarded", len(sizes), total, max)
	}
	return nil
}
