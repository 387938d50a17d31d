package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tandem")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tandem: %v\n%s", err, out)
		os.Exit(1)
	}
	// Commands run under a guard built without the race detector (cli.GuardExeEnv).
	guard := filepath.Join(dir, "tandem-guard")
	if out, err := exec.Command("go", "build", "-o", guard, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tandem: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Setenv("TANDEM_TEST_GUARD_EXE", guard)
	code := pgtest.Wrap(m).Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a real tandem process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	done   chan error    // the process's exit, once
	exited chan struct{} // closed when it has exited
	// workDir is the server's working directory when it keeps the default data
	// directory (./tandem-data); tokenDir is the data directory holding the bootstrap
	// admin token of its repository. The CLI finds the token as on a user's host: run in
	// workDir, or with TANDEM_DATA_DIR=tokenDir.
	workDir, tokenDir string

	mu    sync.Mutex
	lines []string // what the server wrote to stderr
}

// logLines returns what the server logged so far.
func (s *server) logLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// tokenDirs maps a repository (its --db, or the data directory of a node with its own
// SQLite file) to the data directory of the node that wrote its bootstrap admin token.
var tokenDirs sync.Map

// cli prepares cmd, a CLI command run against s, to find the token as a user would.
func (s *server) cli(cmd *exec.Cmd) *exec.Cmd {
	if s.workDir != "" {
		cmd.Dir = s.workDir
	} else {
		cmd.Env = append(os.Environ(), "TANDEM_DATA_DIR="+s.tokenDir)
	}
	return cmd
}

var servingLine = regexp.MustCompile(`serving on (https?://\S+)`)

// startServer starts a node keeping its data in dataDir; with dataDir "" it uses the
// default data directory, relative to a working directory of its own.
func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	args := []string{"server", "--listen", "127.0.0.1:0", "--node-id", "n1", "--shutdown-grace", "2s", "--log-format", "json"}
	if dataDir != "" {
		args = append(args, "--data-dir", dataDir)
	}
	cmd := exec.Command(binary, append(args, extra...)...)
	repo := dataDir
	for i, a := range extra {
		if a == "--db" && i+1 < len(extra) {
			repo = extra[i+1]
		}
	}
	if dataDir == "" {
		cmd.Dir = t.TempDir()
		repo = cmd.Dir
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1), exited: make(chan struct{})}
	if dataDir == "" {
		s.workDir = cmd.Dir
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			t.Log(line)
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		s.done <- cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.addr = <-addr:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "admin.token")); err == nil && dataDir != "" {
		tokenDirs.LoadOrStore(repo, dataDir)
	}
	if d, ok := tokenDirs.Load(repo); ok {
		s.tokenDir = d.(string)
	}
	// Not cmd.ProcessState: the goroutine's Wait writes it, and a test that killed the
	// process itself (cmd.Process.Kill) need not have waited for that.
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// hasExited reports whether the server's process has exited.
func (s *server) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *server) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("server did not exit")
		return nil
	}
}

// tandem runs the CLI against the server and returns its stdout.
func tandem(t *testing.T, s *server, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.cli(exec.CommandContext(ctx, binary, append(args, "--server", s.addr)...))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tandem %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// tandemErr runs the CLI and returns its stdout and stderr together, and its error.
func tandemErr(s *server, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := s.cli(exec.CommandContext(ctx, binary, append(args, "--server", s.addr)...)).CombinedOutput()
	return string(out), err
}

type run struct {
	ID             int64      `json:"id"`
	State          string     `json:"state"`
	ScheduledAt    *time.Time `json:"scheduled_at"`
	ScheduledUntil *time.Time `json:"scheduled_until"`
	Occurrences    int        `json:"occurrences"`
	Attempt        int        `json:"attempt"`
}

func runs(t *testing.T, s *server, job string) []run {
	t.Helper()
	var rs []run
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--job", job, "--limit", "10000", "--json")), &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

func succeeded(rs []run) int {
	n := 0
	for _, r := range rs {
		if r.State == "succeeded" {
			n++
		}
	}
	return n
}

// A restart loses nothing and fires nothing twice: every second from the first
// occurrence to the last is accounted for exactly once, as a run or a missed record.
func TestRestartLosesNothingFiresNothingTwice(t *testing.T) {
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.toml")
	os.WriteFile(jobFile, []byte(`
name = "tick"
schedule = ["* * * * * *"]
misfire = "run-all"
[command]
argv = ["sh", "-c", "echo tick > \"$TANDEM_OUTPUT_DIR/tick.txt\""]
`), 0o644)
	s := startServer(t, filepath.Join(dir, "data"))
	if out := tandem(t, s, "job", "apply", "-f", jobFile); !strings.Contains(out, "job tick created") {
		t.Fatalf("apply: %s", out)
	}
	testutil.Wait(t, 30*time.Second, "3 succeeded runs", func() bool { return succeeded(runs(t, s, "tick")) >= 3 })
	if err := s.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
	s = startServer(t, filepath.Join(dir, "data"))
	n := len(runs(t, s, "tick"))
	testutil.Wait(t, 30*time.Second, "3 more runs after the restart", func() bool { return succeeded(runs(t, s, "tick")) >= n+3 })
	// kill -9 too: nothing that was committed may be lost or doubled.
	if err := s.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	s = startServer(t, filepath.Join(dir, "data"))
	n = len(runs(t, s, "tick"))
	testutil.Wait(t, 30*time.Second, "3 more runs after kill -9", func() bool { return succeeded(runs(t, s, "tick")) >= n+3 })
	tandem(t, s, "job", "pause", "tick")
	testutil.Wait(t, 30*time.Second, "runs to settle", func() bool {
		for _, r := range runs(t, s, "tick") {
			if r.State == "queued" || r.State == "assigned" || r.State == "running" {
				return false
			}
		}
		return true
	})
	checkContiguous(t, runs(t, s, "tick"), time.Second)
}

// checkContiguous asserts that the scheduled times, expanded over records of several
// occurrences, form an unbroken sequence at the given step with no time twice.
func checkContiguous(t *testing.T, rs []run, step time.Duration) {
	t.Helper()
	var times []time.Time
	seen := map[time.Time]int64{}
	for _, r := range rs {
		if r.ScheduledAt == nil {
			continue
		}
		last := *r.ScheduledAt
		if r.ScheduledUntil != nil {
			last = *r.ScheduledUntil
		}
		for at := *r.ScheduledAt; !at.After(last); at = at.Add(step) {
			if prev, dup := seen[at]; dup {
				t.Fatalf("scheduled time %s fired twice: runs %d and %d", at, prev, r.ID)
			}
			seen[at] = r.ID
			times = append(times, at)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap != step {
			t.Fatalf("scheduled times %s and %s are %s apart: occurrences lost", times[i-1], times[i], gap)
		}
	}
	if len(times) < 9 {
		t.Fatalf("only %d occurrences", len(times))
	}
	t.Logf("%d occurrences, contiguous, none twice", len(times))
}

func TestCLIErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, filepath.Join(dir, "data"))
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("name = \"x\"\nschedule = [\"0 25 * * *\"]\n[command]\nargv = [\"true\"]\n"), 0o644)
	cmd := s.cli(exec.Command(binary, "job", "apply", "-f", bad, "--server", s.addr, "--json"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("a bad cron expression was accepted")
	}
	var e struct{ Error, Field string }
	if err := json.Unmarshal([]byte(stderr.String()), &e); err != nil || e.Field != "schedule[0]" || !strings.Contains(e.Error, "hour") {
		t.Fatalf("error body %q: want field schedule[0] and a message naming the hour field", stderr.String())
	}
	if out := tandem(t, s, "job", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("jobs after a refused apply: %s", out)
	}
}

// The README's worked example, end to end, on each engine: the example job fires on its
// minute, its CSV output downloads, and an on-demand run with --wait succeeds. On SQLite
// the server runs as the README starts it, with the default (relative) data directory.
func TestWorkedExample(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var s *server
			if engine == "postgres" {
				s = startServer(t, filepath.Join(dir, "data"), "--db", pgtest.NewDatabase(t))
			} else {
				s = startServer(t, "")
			}
			example, err := filepath.Abs("../../examples/daily-sales.toml")
			if err != nil {
				t.Fatal(err)
			}
			if out := tandem(t, s, "job", "apply", "-f", example); !strings.Contains(out, "job sales-report created") {
				t.Fatalf("apply: %s", out)
			}
			// The example forbids overlap: an on-demand run that meets the minute's scheduled
			// run is skipped (and says so); then it is simply asked for again.
			testutil.Wait(t, 60*time.Second, "an on-demand run to succeed", func() bool {
				out, err := tandemErr(s, "run", "sales-report", "--wait", "--timeout", "60s")
				if err != nil && !strings.Contains(out, "skipped") {
					t.Fatalf("run --wait: %v: %s", err, out)
				}
				return err == nil && strings.Contains(out, "succeeded")
			})
			// The scheduled run of the next minute.
			var scheduled run
			testutil.Wait(t, 75*time.Second, "a scheduled run to succeed", func() bool {
				for _, r := range runs(t, s, "sales-report") {
					if r.ScheduledAt != nil && r.State == "succeeded" {
						scheduled = r
						return true
					}
				}
				return false
			})
			csv := tandem(t, s, "runs", "output", fmt.Sprint(scheduled.ID))
			if !strings.HasPrefix(csv, "region,amount,generated_at\nemea,") || strings.Count(csv, "\n") != 3 {
				t.Fatalf("sales.csv of run %d: %q", scheduled.ID, csv)
			}
			saved := filepath.Join(dir, "reports")
			tandem(t, s, "runs", "output", fmt.Sprint(scheduled.ID), "--dir", saved)
			if b, err := os.ReadFile(filepath.Join(saved, "sales.csv")); err != nil || string(b) != csv {
				t.Fatalf("saved file: %q %v", b, err)
			}
			if st := tandem(t, s, "status"); !strings.Contains(st, "primary") || !strings.Contains(st, "Scheduler: Firing") {
				t.Fatalf("status:\n%s", st)
			}
			if out := tandem(t, s, "runs", "show", fmt.Sprint(scheduled.ID)); !strings.Contains(out, "report written for run") {
				t.Fatalf("runs show: %s", out)
			}
		})
	}
}

// An unknown subcommand is an error, not a help page and success.
func TestUnknownSubcommandFails(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"node", "frobnicate", "a"}, {"job", "frob"}, {"frob"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), `unknown command "frob`) {
			t.Errorf("tandem %s: %v, %q; want an unknown-command error", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command(binary, "node").CombinedOutput(); err != nil || !strings.Contains(string(out), "suspend") {
		t.Errorf("tandem node alone: %v, %q; want its help", err, out)
	}
}

// status reads the status table as JSON through s.
func status(t *testing.T, s *server) api.Status {
	t.Helper()
	var st api.Status
	if err := json.Unmarshal([]byte(tandem(t, s, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// joined counts the node.joined events of node (one per start of its process).
func joined(t *testing.T, s *server, node string) int {
	t.Helper()
	var evs []api.Event
	if err := json.Unmarshal([]byte(tandem(t, s, "events", "--type", "node.joined", "--limit", "1000", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Node == node {
			n++
		}
	}
	return n
}

func modeOf(st api.Status, id string) string {
	for _, n := range st.Nodes {
		if n.ID == id {
			return n.Mode
		}
	}
	return ""
}

// Operator actions from the CLI, through any node, on two processes sharing a SQLite
// file: what makes no sense is refused with the reason; `node restart` brings a node
// back as it was; `node stop` of the primary hands the role over and ends its process.
func TestOperatorActionsFromTheCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	// A fixed port: a restarted node listens where it did.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := l.Addr().String()
	l.Close()
	b := startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1", "--listen", bAddr)
	testutil.Wait(t, 30*time.Second, "b to stand by", func() bool { return modeOf(status(t, a), "b") == "standby" })

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "suspend", "b"}, "only the primary can be suspended"},
		{[]string{"node", "standby", "a"}, "only a standby can be held"},
		{[]string{"node", "resume", "b"}, "only a suspended primary or a held standby can be resumed"},
		{[]string{"node", "stop", "nosuch"}, "nosuch"},
	} {
		out, err := tandemErr(b, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("tandem %s: %v %q; want a refusal saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}

	// Restart the standby through the primary: it stops, and comes back standing by.
	epoch := status(t, a).Epoch
	joinedBefore := joined(t, a, "b")
	tandem(t, a, "node", "restart", "b")
	testutil.Wait(t, 30*time.Second, "b to restart and stand by again", func() bool {
		return joined(t, a, "b") > joinedBefore && modeOf(status(t, a), "b") == "standby"
	})
	if st := status(t, a); st.Primary != "a" || st.Epoch != epoch {
		t.Fatalf("after restarting the standby: primary %s epoch %d, want a still primary at epoch %d", st.Primary, st.Epoch, epoch)
	}

	// Stop the primary through the standby: b takes over at once, a's process ends cleanly.
	tandem(t, b, "node", "stop", "a")
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("a exited with %v after node stop, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a did not exit after node stop")
	}
	testutil.Wait(t, 10*time.Second, "b to become primary", func() bool {
		st := status(t, b)
		return st.Primary == "b" && st.Epoch > epoch && modeOf(st, "a") == "stopped"
	})
}
