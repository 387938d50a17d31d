package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/pgtest"
)

// maxClusters is how many clusters the failover tests run at once: three nodes each,
// so at most nine race-detector builds of tandem share the (small) machine.
const maxClusters = 3

func TestMain(m *testing.M) {
	flag.Parse()
	// Scenarios on separate repositories run in parallel; without an explicit -parallel,
	// allow maxClusters of them (the default, GOMAXPROCS, may be 2 on a small machine,
	// which leaves the CPU idle while nodes wait out leases and heartbeats).
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", fmt.Sprint(maxClusters))
	}
	code := pgtest.Wrap(m).Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// tandemBinary builds the tandem binary with the race detector, once per test binary,
// on first use: the tests of the execution scripts, the proxy and the receiver need no
// binary, and a tree that does not build fails the failover tests with the compiler's
// message rather than every test.
func tandemBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tandem-chaos-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tandem")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-race", "-o", binPath, "../../cmd/tandem").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build tandem: %w\n%s", err, out)
			return
		}
		// Commands run under a guard built without the race detector (cli.GuardExeEnv).
		guard := filepath.Join(binDir, "tandem-guard")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", guard, "../../cmd/tandem").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build tandem guard: %w\n%s", err, out)
			return
		}
		os.Setenv("TANDEM_TEST_GUARD_EXE", guard)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// newTestCluster makes an empty cluster on a fresh repository of the engine ("sqlite"
// or "postgres"). Cleanup kills every process; a failed test gets every log line, and a
// data race or panic in any node fails the test.
func newTestCluster(t *testing.T, engine string, args ...string) *Cluster {
	t.Helper()
	bin := tandemBinary(t)
	dir := t.TempDir()
	var db string
	if engine == "postgres" {
		db = pgtest.NewDatabase(t)
	}
	c, err := New(Options{Binary: bin, Dir: dir, DB: db, Args: args, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
		if faults := c.Faults(); len(faults) > 0 {
			var b strings.Builder
			for _, l := range faults {
				b.WriteString("\n" + l.String())
			}
			t.Errorf("a node failed hard:%s", b.String())
		}
		if t.Failed() {
			var b strings.Builder
			c.DumpLogs(&b)
			t.Logf("logs of every node:\n%s", b.String())
		}
	})
	return c
}
