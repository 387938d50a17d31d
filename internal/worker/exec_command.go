package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// RunCommand runs c once for x and waits for it to end.
//
// The command runs in a process group of its own. When ctx ends or x.Timeout elapses the
// whole group gets SIGTERM, then SIGKILL after x.KillGrace. When the command's own
// process exits, anything it left running in its group is killed: the attempt is over,
// and leftovers must neither outlive it nor hold its output open.
func RunCommand(ctx context.Context, x Execution, c job.Command) Result {
	ctx, cancel := x.attemptContext(ctx)
	defer cancel()

	stdout, stderr := newCapture(x.outputLimit()), newCapture(x.outputLimit())
	r := Result{ExitCode: -1}
	var out, errOut io.Writer = stdout, stderr
	if x.LiveStdout != nil {
		out = io.MultiWriter(stdout, x.LiveStdout)
	}
	if x.LiveStderr != nil {
		errOut = io.MultiWriter(stderr, x.LiveStderr)
	}
	runCommand(ctx, x, c, out, errOut, &r)
	r.Stdout, r.StdoutTruncated = stdout.bytes()
	r.Stderr, r.StderrTruncated = stderr.bytes()
	r.collectInto(x.OutputDir)
	return r
}

// runCommand does the work of RunCommand, recording into r the exit code and error.
func runCommand(ctx context.Context, x Execution, c job.Command, stdout, stderr io.Writer, r *Result) {
	cmd, err := buildCommand(x, c)
	if err != nil {
		r.Err = err
		return
	}
	if ctx.Err() != nil {
		r.markStopped(ctx) // not worth starting what would be stopped at once
		return
	}
	outP, err := newOutputPipe()
	if err != nil {
		r.Err = fmt.Errorf("create stdout pipe: %w", err)
		return
	}
	defer outP.close()
	errP, err := newOutputPipe()
	if err != nil {
		r.Err = fmt.Errorf("create stderr pipe: %w", err)
		return
	}
	defer errP.close()

	cmd.Stdout, cmd.Stderr = outP.w, errP.w
	if err := checkDir(cmd.Dir); err != nil {
		r.Err = err
		return
	}
	start := cmd.Start
	if x.Launcher != nil {
		start = func() error { return x.Launcher.Start(cmd) }
	}
	if err := start(); err != nil {
		r.Err = fmt.Errorf("start command: %w", err)
		return
	}
	// Only the child's processes hold the write ends now, so EOF means they are all done.
	outP.w.Close()
	errP.w.Close()
	outP.drainTo(stdout)
	errP.drainTo(stderr)

	pgid := cmd.Process.Pid // Setpgid with Pgid 0: the group is named after its leader
	if x.Started != nil {
		x.Started(pgid)
	}
	exited := make(chan struct{})
	stopped := make(chan bool, 1)
	go func() { stopped <- stopGroup(ctx, pgid, x.killGrace(), exited) }()
	waitErr := cmd.Wait()
	close(exited)
	killed := <-stopped

	// Leftovers, if any (usually none: ESRCH). The leader was just reaped, but Linux hands
	// out pids in sequence, so its pid cannot name another group this soon.
	_ = signalGroup(pgid, syscall.SIGKILL)
	awaitDrain(x.killGrace(), outP, errP)

	r.ExitCode = cmd.ProcessState.ExitCode()
	var exitErr *exec.ExitError
	switch {
	case killed:
		// We interrupted it, so whatever it exited with is a consequence of that.
		r.markStopped(ctx)
	case errors.As(waitErr, &exitErr):
		r.Err = exitErr // "exit status 3", "signal: killed"
	case waitErr != nil:
		r.Err = fmt.Errorf("wait for command: %w", waitErr)
	}
}

// buildCommand turns c into an unstarted command for x. Argv[0] is looked up on the
// server's PATH, not on a PATH the job sets in its Env.
func buildCommand(x Execution, c job.Command) (*exec.Cmd, error) {
	argv := c.Argv
	if c.Shell {
		if len(argv) != 1 {
			return nil, fmt.Errorf("shell command needs exactly one argv element, the script; got %d", len(argv))
		}
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("command has no program to run: argv is empty")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = commandEnv(x, c)
	cmd.Dir = cmp.Or(c.Dir, x.OutputDir)
	// A group of its own lets a stop reach every process the job starts, not only the
	// first one: shells and wrappers rarely pass signals on to their children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	credential(cmd.SysProcAttr, x.RunAs)
	return cmd, nil
}

// checkDir tells a missing working directory apart: the kernel's ENOENT from the
// chdir of a starting child reads as if the program were missing.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("start command: working directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("start command: working directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("start command: working directory %s is not a directory", dir)
	}
	return nil
}

// BaseEnv are the server variables every command gets (when the server has them): the
// rest of the server's environment (its repository URL, passwords, tokens) never
// reaches a job unless the job names it in inherit_env.
var BaseEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// pathDefault is a command's PATH when the server has none.
const pathDefault = "/usr/local/bin:/usr/bin:/bin"

// commandEnv is the base variables and those the job inherits from the server, then the
// TANDEM_* variables, then the job's own Env. os/exec keeps the last of duplicate keys,
// so later entries win.
func commandEnv(x Execution, c job.Command) []string {
	scheduled := ""
	if !x.ScheduledAt.IsZero() {
		scheduled = x.ScheduledAt.UTC().Format(time.RFC3339Nano)
	}
	var env []string
	if _, ok := os.LookupEnv("PATH"); !ok {
		env = append(env, "PATH="+pathDefault)
	}
	for _, k := range slices.Concat(BaseEnv, c.InheritEnv) {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if x.RunAs != nil && x.RunAs.Home != "" {
		env = append(env, "HOME="+x.RunAs.Home)
	}
	jobEnv := c.Env
	env = append(env,
		"TANDEM_RUN_ID="+strconv.FormatInt(x.RunID, 10),
		"TANDEM_JOB="+x.Job,
		"TANDEM_ATTEMPT="+strconv.Itoa(x.Attempt),
		"TANDEM_SCHEDULED_AT="+scheduled,
		"TANDEM_OUTPUT_DIR="+x.OutputDir,
	)
	for _, k := range slices.Sorted(maps.Keys(jobEnv)) {
		env = append(env, k+"="+jobEnv[k])
	}
	return env
}

// stopGroup waits until exited is closed or ctx ends. If ctx ends first it sends SIGTERM
// to process group pgid and, if the leader has not exited after grace, SIGKILL. It
// reports whether it signaled the group.
func stopGroup(ctx context.Context, pgid int, grace time.Duration, exited <-chan struct{}) bool {
	select {
	case <-exited:
		return false
	case <-ctx.Done():
	}
	if err := signalGroup(pgid, syscall.SIGTERM); err != nil {
		return false // the group is already gone: nothing was interrupted
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = signalGroup(pgid, syscall.SIGKILL)
	}
	return true
}

// signalGroup sends sig to every process in group pgid. The leader stays unreaped until
// cmd.Wait returns, so until then pgid cannot name another group.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil {
		return fmt.Errorf("signal process group %d: %w", pgid, err)
	}
	return nil
}

// outputPipe is one output stream of a child. The child gets the write end as a plain
// file, so os/exec starts no copying goroutine of its own and cmd.Wait returns once the
// process exits, whatever else still holds the pipe; draining is ours to bound.
type outputPipe struct {
	r, w    *os.File
	drained chan struct{}
}

func newOutputPipe() (*outputPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &outputPipe{r: r, w: w, drained: make(chan struct{})}, nil
}

// drainTo copies the stream into dst in the background until EOF or until the read end
// is closed.
func (p *outputPipe) drainTo(dst io.Writer) {
	go func() {
		defer close(p.drained)
		_, _ = io.Copy(dst, p.r) // an error only means the read end was closed under it
	}()
}

// close releases both ends; closing one twice is harmless.
func (p *outputPipe) close() {
	p.r.Close()
	p.w.Close()
}

// awaitDrain waits for the pipes to reach EOF. Once the group is dead, only a process
// that left it (setsid, a daemon) can still hold them: it gets grace to finish, then the
// read ends are closed under it so the attempt cannot hang.
func awaitDrain(grace time.Duration, pipes ...*outputPipe) {
	giveUp, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, p := range pipes {
		select {
		case <-p.drained:
		case <-giveUp.Done():
			p.r.Close() // ends the pending read in drainTo
			<-p.drained
		}
	}
}
