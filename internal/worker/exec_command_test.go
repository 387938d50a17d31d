package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
)

// envOf parses the output of env(1) into a map.
func envOf(out []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

// checkSuccess fails the test unless r describes a clean exit 0.
func checkSuccess(t *testing.T, r Result) {
	t.Helper()
	if r.Err != nil || r.ExitCode != 0 || r.TimedOut || r.Canceled {
		t.Fatalf("want success, got Err %q ExitCode %d TimedOut %v Canceled %v; stderr %q",
			errText(r.Err), r.ExitCode, r.TimedOut, r.Canceled, r.Stderr)
	}
}

func TestRunCommandEnvironment(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	c := job.Command{
		Argv: []string{"env"},
		Env:  map[string]string{"REPORT_REGION": "emea", "TANDEM_ATTEMPT": "job wins"},
	}
	r := RunCommand(context.Background(), x, c)
	checkSuccess(t, r)

	env := envOf(r.Stdout)
	for k, want := range map[string]string{
		"TANDEM_RUN_ID":       "42",
		"TANDEM_JOB":          "daily-sales",
		"TANDEM_ATTEMPT":      "job wins",
		"TANDEM_SCHEDULED_AT": "2026-03-01T06:00:00Z",
		"TANDEM_OUTPUT_DIR":   x.OutputDir,
		"REPORT_REGION":       "emea",
		"PATH":                os.Getenv("PATH"), // of the server's environment, only the base
	} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
		}
	}
}

// A job sees none of the server's variables but PATH, HOME, LANG, TZ and those it names
// in inherit_env.
func TestRunCommandEnvironmentIsClean(t *testing.T) {
	t.Setenv("TANDEM_DB", "postgres://tandem:hunter2@db/tandem")
	t.Setenv("PGPASSWORD", "hunter2")
	t.Setenv("REPORT_LOCALE", "en_GB")
	t.Setenv("TZ", "Europe/Paris")
	x := newExecution(t)
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"env"}, InheritEnv: []string{"REPORT_LOCALE"}})
	checkSuccess(t, r)
	env := envOf(r.Stdout)
	for k := range env {
		switch {
		case k == "PATH" || k == "HOME" || k == "LANG" || k == "TZ" || k == "REPORT_LOCALE" || strings.HasPrefix(k, "TANDEM_"):
		default:
			t.Errorf("the job sees the server's %s", k)
		}
	}
	if _, ok := env["TANDEM_DB"]; ok || env["REPORT_LOCALE"] != "en_GB" || env["TZ"] != "Europe/Paris" {
		t.Errorf("env: %v", env)
	}
	if strings.Contains(string(r.Stdout), "hunter2") {
		t.Error("a server password reached the job")
	}
}

func TestRunCommandOnDemandHasEmptyScheduledAt(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	x.ScheduledAt = time.Time{}
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"env"}})
	checkSuccess(t, r)
	if got, ok := envOf(r.Stdout)["TANDEM_SCHEDULED_AT"]; !ok || got != "" {
		t.Errorf("TANDEM_SCHEDULED_AT = %q (set %v), want set and empty", got, ok)
	}
}

func TestRunCommandOutputFiles(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	// rel.txt is written relative to the working directory, which defaults to OutputDir.
	script := `mkdir -p "$TANDEM_OUTPUT_DIR/by-region" &&
printf 'region,total\nemea,12\n' > "$TANDEM_OUTPUT_DIR/by-region/emea.csv" &&
printf 'summary' > "$TANDEM_OUTPUT_DIR/summary.txt" &&
printf 'rel' > rel.txt`
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{script}, Shell: true})
	checkSuccess(t, r)

	want := []OutputFile{
		{"by-region/emea.csv", 21, sha256Hex([]byte("region,total\nemea,12\n"))},
		{"rel.txt", 3, sha256Hex([]byte("rel"))},
		{"summary.txt", 7, sha256Hex([]byte("summary"))},
	}
	if len(r.Outputs) != len(want) {
		t.Fatalf("Outputs = %v, want %v", r.Outputs, want)
	}
	for i := range want {
		if r.Outputs[i] != want[i] {
			t.Errorf("Outputs[%d] = %v, want %v", i, r.Outputs[i], want[i])
		}
	}
}

func TestRunCommandDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := RunCommand(context.Background(), newExecution(t), job.Command{Argv: []string{"pwd"}, Dir: dir})
	checkSuccess(t, r)
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(r.Stdout)); got != want {
		t.Errorf("pwd = %q, want %q", got, want)
	}
}

func TestRunCommandShell(t *testing.T) {
	t.Parallel()
	c := job.Command{Argv: []string{`n=3; echo "n=$((n * 2))" | tr n N`}, Shell: true}
	r := RunCommand(context.Background(), newExecution(t), c)
	checkSuccess(t, r)
	if got := string(r.Stdout); got != "N=6\n" {
		t.Errorf("stdout = %q, want %q", got, "N=6\n")
	}
}

func TestRunCommandShellNeedsOneScript(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	c := job.Command{Argv: []string{"echo", "hi"}, Shell: true}
	r := RunCommand(context.Background(), x, c)
	want := "shell command needs exactly one argv element, the script; got 2"
	if errText(r.Err) != want || r.ExitCode != -1 {
		t.Errorf("got Err %q ExitCode %d, want %q -1", errText(r.Err), r.ExitCode, want)
	}
}

func TestRunCommandArgvNotSplit(t *testing.T) {
	t.Parallel()
	c := job.Command{Argv: []string{"printf", "[%s]", "two words", "$HOME", "*"}}
	r := RunCommand(context.Background(), newExecution(t), c)
	checkSuccess(t, r)
	if got, want := string(r.Stdout), "[two words][$HOME][*]"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestRunCommandExitStatus(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	c := job.Command{Argv: []string{`echo partial > "$TANDEM_OUTPUT_DIR/p.txt"; echo oops >&2; exit 3`}, Shell: true}
	r := RunCommand(context.Background(), x, c)
	if errText(r.Err) != "exit status 3" || r.ExitCode != 3 || r.TimedOut || r.Canceled {
		t.Errorf("got Err %q ExitCode %d TimedOut %v Canceled %v, want exit status 3",
			errText(r.Err), r.ExitCode, r.TimedOut, r.Canceled)
	}
	if string(r.Stderr) != "oops\n" {
		t.Errorf("stderr = %q, want %q", r.Stderr, "oops\n")
	}
	if len(r.Outputs) != 1 || r.Outputs[0].Name != "p.txt" {
		t.Errorf("Outputs = %v, want p.txt kept from the failed attempt", r.Outputs)
	}
}

func TestRunCommandMissingProgram(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	if err := os.WriteFile(filepath.Join(x.OutputDir, "left.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"tandem-no-such-program"}})
	want := `start command: exec: "tandem-no-such-program": executable file not found in $PATH`
	if errText(r.Err) != want || r.ExitCode != -1 {
		t.Errorf("got Err %q ExitCode %d, want %q -1", errText(r.Err), r.ExitCode, want)
	}
	if len(r.Outputs) != 1 {
		t.Errorf("Outputs = %v, want the directory listed even so", r.Outputs)
	}
}

func TestRunCommandTimeoutKillsGrandchild(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	x.Timeout = time.Second
	// The shell waits on a grandchild; both must die, and promptly.
	script := `sleep 30 & echo $! > "$TANDEM_OUTPUT_DIR/pid"; wait`
	start := time.Now()
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{script}, Shell: true})
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("took %v; the grandchild kept the attempt alive", elapsed)
	}
	if !r.TimedOut || r.Canceled || errText(r.Err) != "timed out after 1s" || r.ExitCode != -1 {
		t.Errorf("got TimedOut %v Canceled %v Err %q ExitCode %d, want a timeout",
			r.TimedOut, r.Canceled, errText(r.Err), r.ExitCode)
	}
	waitProcessGone(t, readPID(t, filepath.Join(x.OutputDir, "pid")))
}

func TestRunCommandTimeoutEscalatesToKill(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	x.Timeout = 300 * time.Millisecond
	// Everything ignores SIGTERM (children inherit the ignored disposition), so only
	// the SIGKILL after the grace ends them.
	script := `trap "" TERM; sleep 30 & echo $! > "$TANDEM_OUTPUT_DIR/pid"; wait`
	start := time.Now()
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{script}, Shell: true})
	elapsed := time.Since(start)
	if elapsed < x.Timeout+x.KillGrace || elapsed > 10*time.Second {
		t.Errorf("took %v, want between %v and 10s", elapsed, x.Timeout+x.KillGrace)
	}
	if !r.TimedOut || r.ExitCode != -1 {
		t.Errorf("got TimedOut %v ExitCode %d, want a timeout and a killed process", r.TimedOut, r.ExitCode)
	}
	waitProcessGone(t, readPID(t, filepath.Join(x.OutputDir, "pid")))
}

func TestRunCommandCanceled(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	pidFile := filepath.Join(x.OutputDir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the child is surely running and its pid written whole (the shell
		// makes the file before it writes it); a failed test still cancels above.
		for {
			if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) || ctx.Err() != nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	script := `sleep 30 & echo $! > "$TANDEM_OUTPUT_DIR/pid"; wait`
	r := RunCommand(ctx, x, job.Command{Argv: []string{script}, Shell: true})
	if !r.Canceled || r.TimedOut || errText(r.Err) != "canceled" {
		t.Errorf("got Canceled %v TimedOut %v Err %q, want canceled", r.Canceled, r.TimedOut, errText(r.Err))
	}
	waitProcessGone(t, readPID(t, pidFile))
}

func TestRunCommandCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("shutting down"))
	r := RunCommand(ctx, x, job.Command{Argv: []string{`touch "$TANDEM_OUTPUT_DIR/ran"`}, Shell: true})
	if !r.Canceled || errText(r.Err) != "canceled: shutting down" || r.ExitCode != -1 {
		t.Errorf("got Canceled %v Err %q ExitCode %d, want canceled before start", r.Canceled, errText(r.Err), r.ExitCode)
	}
	if len(r.Outputs) != 0 {
		t.Errorf("the command ran: Outputs = %v", r.Outputs)
	}
}

func TestRunCommandKillsLeftovers(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	// The shell exits at once but leaves a background child holding stdout open.
	script := `sleep 30 & echo $! > "$TANDEM_OUTPUT_DIR/pid"; echo done`
	start := time.Now()
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{script}, Shell: true})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v; a leftover kept the attempt alive", elapsed)
	}
	checkSuccess(t, r)
	if string(r.Stdout) != "done\n" {
		t.Errorf("stdout = %q, want %q", r.Stdout, "done\n")
	}
	waitProcessGone(t, readPID(t, filepath.Join(x.OutputDir, "pid")))
}

func TestRunCommandEscapedProcessCannotHang(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	// setsid takes the child out of the process group, so no group signal reaches it,
	// yet it still holds stdout open. The shell exits only once the child has escaped.
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := `setsid sh -c 'echo $$ > "$1"; exec sleep 30' sh "$PIDFILE" &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done; echo started`
	c := job.Command{Argv: []string{script}, Shell: true, Env: map[string]string{"PIDFILE": pidFile}}
	start := time.Now()
	r := RunCommand(context.Background(), x, c)
	elapsed := time.Since(start)

	pid := readPID(t, pidFile)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Errorf("kill escaped process %d: %v", pid, err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v; the escaped process kept the attempt alive", elapsed)
	}
	checkSuccess(t, r)
	if string(r.Stdout) != "started\n" {
		t.Errorf("stdout = %q, want %q", r.Stdout, "started\n")
	}
}

func TestRunCommandTruncatesOutput(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	x.OutputLimit = 1000
	x.Timeout = 15 * time.Second // a blocked child fails the test rather than hanging it
	// Far more than a pipe buffer on both streams: the child only finishes, and only
	// writes its marker file, if the drains keep reading past the limit.
	script := `head -c 3000000 /dev/zero | tr '\0' o; head -c 2000000 /dev/zero | tr '\0' e >&2; echo ok > "$TANDEM_OUTPUT_DIR/done"`
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{script}, Shell: true})
	checkSuccess(t, r)
	if want := strings.Repeat("o", 1000); string(r.Stdout) != want || !r.StdoutTruncated {
		t.Errorf("stdout: %d bytes, truncated %v; want the first 1000 and truncated", len(r.Stdout), r.StdoutTruncated)
	}
	if want := strings.Repeat("e", 1000); string(r.Stderr) != want || !r.StderrTruncated {
		t.Errorf("stderr: %d bytes, truncated %v; want the first 1000 and truncated", len(r.Stderr), r.StderrTruncated)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].Name != "done" {
		t.Errorf("Outputs = %v, want the marker the child writes last", r.Outputs)
	}
}

func TestRunCommandSmallOutputNotTruncated(t *testing.T) {
	t.Parallel()
	r := RunCommand(context.Background(), newExecution(t), job.Command{Argv: []string{"echo", "hello"}})
	checkSuccess(t, r)
	if string(r.Stdout) != "hello\n" || r.StdoutTruncated || r.StderrTruncated || len(r.Stderr) != 0 {
		t.Errorf("got stdout %q truncated %v/%v stderr %q", r.Stdout, r.StdoutTruncated, r.StderrTruncated, r.Stderr)
	}
}

// As root, run_as runs the command as a throwaway user, who may write its outputs and
// whose files are taken back once it ends.
func TestRunCommandRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run_as needs root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	name := "tdmtest" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/false", name).CombinedOutput(); err != nil {
		t.Skipf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	u, err := LookupRunAs(name)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	for d := filepath.Dir(dataDir); d != "/tmp" && d != "/" && len(d) > 1; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o711) // the test's own temporary directories
	}
	dir, err := output.NewLayout(dataDir).PrepareAttempt(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := OpenOutputDir(dataDir, dir, u); err != nil {
		t.Fatal(err)
	}
	x := newExecution(t)
	x.OutputDir, x.RunAs = dir, u
	r := RunCommand(context.Background(), x, job.Command{Argv: []string{"sh", "-c", `id -u; echo "$HOME"; echo made > "$TANDEM_OUTPUT_DIR/out.txt"; cat /etc/shadow`}})
	lines := strings.Split(string(r.Stdout), "\n")
	if len(lines) < 2 || lines[0] != strconv.Itoa(int(u.Uid)) || lines[1] != "/nonexistent" {
		t.Fatalf("stdout %q, stderr %q: want uid %d, HOME /nonexistent", r.Stdout, r.Stderr, u.Uid)
	}
	if r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "Permission denied") {
		t.Fatalf("the job read /etc/shadow: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	if err := ReclaimOutputDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "out.txt"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("out.txt: %v %v, want it taken back by root", fi, err)
	}
}
