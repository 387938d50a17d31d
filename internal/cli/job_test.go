package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/job"
)

// job show lists each schedule's next occurrences, computed from the definition.
func TestJobShowUpcoming(t *testing.T) {
	t.Parallel()
	j := wire.Job{Spec: job.Spec{Name: "sales", Schedule: []string{"15,45 * * * *", "30 2 * * *"},
		Timezone: "America/New_York", Blackout: []string{"2026-03-09"}, Noop: &job.Noop{}}}
	var out bytes.Buffer
	if err := printJob(&out, j, time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	_, got, _ := strings.Cut(out.String(), "\n\n")
	want := `Next occurrences (computed here, as tandem schedule next):
  schedule[0] 15,45 * * * * (interval)
    UTC                   America/New_York
    2026-03-08T06:45:00Z  2026-03-08 01:45:00 EST (-05:00)
    2026-03-08T07:15:00Z  2026-03-08 03:15:00 EDT (-04:00)
    2026-03-08T07:45:00Z  2026-03-08 03:45:00 EDT (-04:00)
    2026-03-08T08:15:00Z  2026-03-08 04:15:00 EDT (-04:00)
    2026-03-08T08:45:00Z  2026-03-08 04:45:00 EDT (-04:00)
  schedule[1] 30 2 * * * (fixed-time)
    UTC                   America/New_York
    2026-03-08T07:00:00Z  2026-03-08 03:00:00 EDT (-04:00)
    2026-03-09T06:30:00Z  2026-03-09 02:30:00 EDT (-04:00)  skipped: blackout date 2026-03-09
    2026-03-10T06:30:00Z  2026-03-10 02:30:00 EDT (-04:00)
    2026-03-11T06:30:00Z  2026-03-11 02:30:00 EDT (-04:00)
    2026-03-12T06:30:00Z  2026-03-12 02:30:00 EDT (-04:00)
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
