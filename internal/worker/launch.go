package worker

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// A command must not outlive its node: when the node's process dies (kill -9, a crash),
// its runs are given to other attempts on other nodes, and a command still running here
// would be a second execution of the same run. Two mechanisms make sure it dies:
//
//   - The parent-death signal. Linux sends it to a child when the thread that started
//     the child ends, so every command is started from one thread that lives as long as
//     the Launcher (a goroutine locked to its OS thread); Go's other threads come and go.
//   - The guard. The signal reaches one process, and a command's group has many (a shell
//     and its children). So the node starts each command under a guard: a copy of the
//     tandem binary that leads the command's process group, starts the command in it,
//     and, when the parent-death signal arrives, kills the whole group. Without a guard
//     executable (tests that embed a node), the command itself gets the signal.

// guardEnv, set in a guard's environment, names the process id of the node that
// started it (so the guard can tell that node has already gone).
const guardEnv = "TANDEM_COMMAND_GUARD"

// guardDeathSignal is the parent-death signal a guard gets: one no command is sent by
// tandem, so the guard can tell it from the group's SIGTERM on a stop.
const guardDeathSignal = syscall.SIGUSR2

// GuardMain runs this process as a command's guard when it was started as one, and then
// exits; otherwise it returns at once. The tandem binary calls it first thing in main;
// tests that run commands under a guard call it from TestMain.
func GuardMain() {
	parent := os.Getenv(guardEnv)
	if parent == "" {
		return
	}
	os.Exit(runGuard(parent, os.Args[1:]))
}

// runGuard starts argv in this process's group (the guard leads it) and waits for it,
// exiting as it exits. On the parent-death signal it kills the whole group.
func runGuard(parent string, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "tandem command guard: no command")
		return 127
	}
	signals := make(chan os.Signal, 4)
	// SIGTERM and SIGINT reach every process of the group directly; the guard only waits
	// for the command to end. Caught, not ignored: a caught signal is reset for the child.
	signal.Notify(signals, guardDeathSignal, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	killGroup := func() { _ = syscall.Kill(-syscall.Getpgrp(), syscall.SIGKILL) }
	if strconv.Itoa(os.Getppid()) != parent {
		killGroup() // the node died before the parent-death signal was armed
		return 137
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = withoutGuardEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "start command: %v\n", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			if sig == guardDeathSignal {
				killGroup()
			}
		case <-done:
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				// Die of the same signal, so the node sees what the command saw.
				signal.Reset(ws.Signal())
				_ = syscall.Kill(os.Getpid(), ws.Signal())
			}
			return cmd.ProcessState.ExitCode()
		}
	}
}

func withoutGuardEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) < len(guardEnv)+1 || kv[:len(guardEnv)+1] != guardEnv+"=" {
			out = append(out, kv)
		}
	}
	return out
}

// Launcher starts commands so that they die with this process (see above). Its zero
// value is not usable; make one with NewLauncher and Close it once no command it started
// runs any more.
type Launcher struct {
	guard string // the guard executable; "" for none

	once  sync.Once
	reqs  chan launchReq
	close sync.Once
	done  chan struct{}
}

type launchReq struct {
	cmd *exec.Cmd
	err chan error
}

// NewLauncher returns a launcher that starts commands under the guard executable guard
// ("" for none: the command itself gets the parent-death signal).
func NewLauncher(guard string) *Launcher {
	return &Launcher{guard: guard, reqs: make(chan launchReq), done: make(chan struct{})}
}

// Start starts cmd, whose SysProcAttr must already be set, from the launcher's thread,
// with the parent-death signal armed. With a guard, cmd is rewritten to run under it:
// cmd.Process is then the guard, which leads the command's process group.
func (l *Launcher) Start(cmd *exec.Cmd) error {
	if l == nil {
		return errors.New("no launcher")
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if l.guard != "" {
		cmd.Args = append([]string{l.guard, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = l.guard
		cmd.Env = append(cmd.Env, guardEnv+"="+strconv.Itoa(os.Getpid()))
		cmd.SysProcAttr.Pdeathsig = guardDeathSignal
	}
	l.once.Do(func() { go l.loop() })
	r := launchReq{cmd: cmd, err: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-l.done:
		return errors.New("start command: the node is shutting down")
	}
	return <-r.err
}

// loop starts every command from one OS thread that never runs anything else. It ends
// with Close; its thread ends with it (the goroutine stays locked), which would signal
// any command still running: Close only after the last one ended.
func (l *Launcher) loop() {
	runtime.LockOSThread()
	for {
		select {
		case r := <-l.reqs:
			r.err <- r.cmd.Start()
		case <-l.done:
			return
		}
	}
}

// Close ends the launcher's thread. Safe to call twice.
func (l *Launcher) Close() {
	l.close.Do(func() { close(l.done) })
}
