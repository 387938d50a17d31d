package chaos

import (
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/pgtest"
)

// The short soak runs in every `go test` of this package: a fixed seed per engine and a
// fault phase of soakShort, in parallel with the failover scenarios. The flags run it
// longer, with more faults, with another seed, or on one engine:
//
//	go test ./internal/chaos/ -run TestSoak -soak.duration=30m -soak.faults=500 -v
//	go test ./internal/chaos/ -run TestSoak/postgres -soak.seed=12345 -v
var (
	soakDuration = flag.Duration("soak.duration", 0, "how long faults are injected per engine (default 30s; with -soak.faults, at most this long)")
	soakFaults   = flag.Int("soak.faults", 0, "stop after this many faults per engine (0: by -soak.duration only)")
	soakSeed     = flag.Uint64("soak.seed", 0, "seed of the fault schedule (default: a fixed seed per engine)")
	soakEngines  = flag.String("soak.engine", "sqlite,postgres", "engines to soak, comma separated")
	soakNoRace   = flag.Bool("soak.norace", false, "run the soak's nodes built without the race detector (lighter: more faults per minute)")
)

var (
	plainOnce sync.Once
	plainPath string
	plainErr  error
)

// plainBinary builds tandem without the race detector, once per test binary.
func plainBinary(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		dir := filepath.Dir(tandemBinary(t))
		plainPath = filepath.Join(dir, "tandem-norace")
		out, err := exec.CommandContext(t.Context(), "go", "build", "-o", plainPath, "../../cmd/tandem").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("build tandem: %w\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainPath
}

const soakShort = 30 * time.Second

// soakSeeds are the CI soak's fixed seeds; soakSlotSeeds those of the soak with
// scheduler slots.
var (
	soakSeeds     = map[string]uint64{"sqlite": 20260501, "postgres": 20260502}
	soakSlotSeeds = map[string]uint64{"sqlite": 20260503, "postgres": 20260504}
)

// soakSlots is the number of scheduler slots of TestSoakSlots.
const soakSlots = 3

func TestSoak(t *testing.T) {
	t.Parallel()
	for _, engine := range strings.Split(*soakEngines, ",") {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			soak(t, "TestSoak", engine, soakSeeds[engine], 0, true)
		})
	}
}

// TestSoakSlots is the soak with --scheduler-slots 3: every node fires a slot, so the
// faults depose slot holders as well as the primary, and the history check adds the slot
// rules (each occurrence fired once across the slots' holders, none lost beyond the
// misfire policy, none by a deposed holder). The soak flags apply to it too.
func TestSoakSlots(t *testing.T) {
	t.Parallel()
	for _, engine := range strings.Split(*soakEngines, ",") {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			soak(t, "TestSoakSlots", engine, soakSlotSeeds[engine], soakSlots, false)
		})
	}
}

func soak(t *testing.T, test, engine string, seed uint64, slots int, site bool) {
	if *soakSeed != 0 {
		seed = *soakSeed
	}
	dur := *soakDuration
	if dur == 0 && *soakFaults == 0 {
		dur = soakShort
	}
	if dur == 0 {
		dur = 24 * time.Hour
	}
	replay := fmt.Sprintf("go test ./internal/chaos/ -run '%s/%s$' -soak.engine=%s -soak.seed=%d -soak.duration=%s", test, engine, engine, seed, dur)
	if *soakFaults > 0 {
		replay += fmt.Sprintf(" -soak.faults=%d", *soakFaults)
	}
	t.Logf("seed %d; replay: %s", seed, replay)
	bin := tandemBinary(t)
	if *soakNoRace {
		bin = plainBinary(t)
		replay += " -soak.norace"
	}
	res, err := Soak(t.Context(), SoakOptions{Binary: bin, Dir: t.TempDir(), Engine: engine, Seed: seed,
		Duration: dur, Faults: *soakFaults, Out: t.Output(), Replay: replay, Slots: slots, Site: site})
	if errors.Is(err, pgtest.ErrNotInstalled) {
		t.Skip(err)
	}
	t.Log(res.Summary())
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if err := res.Err(); err != nil {
		t.Error(err)
	}
}

// The summary counts the jobs, not the notifications' and the DR site's checks that sit
// beside them in the reports.
func TestSoakSummaryCountsJobsOnly(t *testing.T) {
	r := SoakResult{Engine: "sqlite", Seed: 1, Reports: map[string]history.Report{
		"(notifications)": {Runs: 3}, "(site sync)": {Runs: 4}, "a": {Runs: 10, Occurrences: 10}, "b": {Runs: 5, Occurrences: 6},
	}}
	if s := r.Summary(); !strings.Contains(s, "22 records over 2 jobs, 16 scheduled times") {
		t.Fatalf("summary %q, want 22 records over 2 jobs", s)
	}
}
