package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

func TestTarget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ job, cluster, live, want int }{
		{0, 0, 1, 1}, {0, 0, 3, 2}, {0, 3, 3, 3}, {0, 3, 2, 2}, {1, 3, 3, 1}, {5, 0, 3, 3}, {2, 0, 0, 1},
	} {
		if got := Target(c.job, c.cluster, c.live); got != c.want {
			t.Errorf("Target(job %d, cluster %d, live %d) = %d, want %d", c.job, c.cluster, c.live, got, c.want)
		}
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	if err := Limit([]int64{10, 20}, 30); err != nil {
		t.Fatal(err)
	}
	err := Limit([]int64{10, 21}, 30)
	if err == nil || !strings.Contains(err.Error(), "output_max_bytes") || !strings.Contains(err.Error(), "31 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
}

// An attempt's directory, and those above it, are owner only, whatever the umask.
func TestPrepareAttemptIsOwnerOnly(t *testing.T) {
	t.Parallel()
	l := NewLayout(t.TempDir())
	dir, err := l.PrepareAttempt(7, 2)
	if err != nil {
		t.Fatal(err)
	}
	if dir != l.AttemptDir(7, 2) || l.File(store.OutputRef{RunID: 7, Attempt: 2, Name: "a/b.csv"}) != filepath.Join(dir, "a", "b.csv") {
		t.Fatalf("layout: %s", dir)
	}
	for _, d := range []string{dir, l.RunDir(7), l.Root} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != DirMode {
			t.Errorf("%s: %v %v, want %v", d, fi.Mode().Perm(), err, DirMode)
		}
	}
}
