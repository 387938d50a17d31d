package worker

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A group file left empty (its process died while writing it) is forgotten, not a
// crash of the next process's start (seen in the soak: kill -9 mid-write).
func TestKillLeftoversForgetsAnEmptyRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := New(Params{Log: slog.New(slog.DiscardHandler), Node: "w1", DataDir: dir, Capacity: 1})
	if err := os.MkdirAll(w.groupsDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.groupsDir(), "7.1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.KillLeftovers(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(w.groupsDir()); len(entries) != 0 {
		t.Fatalf("records left: %v", entries)
	}
}
