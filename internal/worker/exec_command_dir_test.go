package worker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// A scheduled instant with a fraction of a second reaches the command whole: several
// runs of a sub-second schedule must not all see the same second.
func TestRunCommandScheduledAtKeepsFraction(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	x.ScheduledAt = time.Date(2026, 3, 1, 10, 27, 18, 250_000_000, time.UTC)
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"env"}})
	checkSuccess(t, r)
	if got, want := envOf(r.Stdout)["TANDEM_SCHEDULED_AT"], "2026-03-01T10:27:18.25Z"; got != want {
		t.Errorf("TANDEM_SCHEDULED_AT = %q, want %q", got, want)
	}
}

// A working directory that does not exist is named as such, not as a missing program.
func TestRunCommandMissingDir(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	dir := filepath.Join(t.TempDir(), "gone")
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"true"}, Dir: dir})
	want := "working directory " + dir + " does not exist"
	if !strings.Contains(errText(r.Err), want) || r.ExitCode != -1 {
		t.Errorf("got Err %q ExitCode %d, want it to say %q", errText(r.Err), r.ExitCode, want)
	}
}
