package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// startupTimeout bounds initdb plus the wait for the server to accept
	// connections. On a loaded 2-core CI machine initdb alone can take
	// several seconds, so this is generous.
	startupTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before Stop falls back to SIGKILL.
	stopTimeout = 30 * time.Second
	// portAttempts is how many free ports Start tries: the port is picked by
	// binding and releasing it, so another process (often a parallel test
	// binary doing the same) can take it before postgres binds it.
	portAttempts = 5
	// superuser is the bootstrap role initdb creates; trust auth means it
	// needs no password.
	superuser = "postgres"
)

// ErrNotInstalled is returned (wrapped) by Start when no PostgreSQL server
// binaries can be found on this machine.
var ErrNotInstalled = errors.New("PostgreSQL server not installed")

// debianInitdbGlob finds the server binaries Debian installs off PATH; a
// variable so that tests can pretend there are none.
var debianInitdbGlob = "/usr/lib/postgresql/*/bin/initdb"

// errPortInUse means postgres exited because it could not bind its port.
var errPortInUse = errors.New("port already in use")

// Server is a running throwaway PostgreSQL cluster.
type Server struct {
	dir     string // temp dir: data directory, unix socket and log
	dataDir string
	logPath string
	port    int
	bin     string   // directory of initdb and postgres, for Restart
	acct    *account // who postgres runs as, for Restart

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the postgres process has been reaped
	waitErr error         // cmd.Wait's result; read only after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// URL returns a postgres:// URL for the named database on this server: the
// bootstrap superuser, no password, host 127.0.0.1 and the server's port.
func (s *Server) URL(db string) string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.User(superuser),
		Host:   net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:   "/" + db,
		// The server has no TLS; disabling it saves pgx a refused TLS
		// handshake on every connection.
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase makes an empty database on this server and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := adminExec(ctx, s.URL("postgres"), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// Start starts a throwaway server in a fresh temp dir: initdb with fsync off,
// trust auth, listening on 127.0.0.1 on a free port and on a unix socket in the
// temp dir. It gives up after 60s (or when ctx ends); on failure the error
// carries the tail of the server's log and nothing is left behind.
//
// When the process runs as root the server runs as an unprivileged user (see
// the package doc). The server is started with a parent-death signal so that it
// dies with the test binary even if that is killed; call Stop to shut it down
// cleanly and remove its directory.
func Start(ctx context.Context) (*Server, error) {
	return start(ctx, freePort)
}

// start is Start with the port source injectable, so tests can make the first
// attempt hit a busy port.
func start(ctx context.Context, nextPort func() (int, error)) (_ *Server, err error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()

	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(sweepStaleDirs)
	base, err := tempBase(acct)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, dirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if acct.cred != nil {
		// initdb must create the data directory and postgres the socket, both
		// inside dir, as the server user.
		if err := os.Chown(dir, int(acct.cred.Uid), int(acct.cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown server directory to %s: %w", acct.name, err)
		}
	}
	s := &Server{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "postgres.log"),
		bin:     bin,
		acct:    acct,
	}
	if err := s.initdb(ctx, bin, acct); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := nextPort()
		if err != nil {
			return nil, err
		}
		err = s.launch(ctx, bin, acct, port)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, err
		}
	}
}

// initdb creates the cluster. --no-sync skips its final fsync of every file,
// which is most of its run time; a crash of a throwaway cluster loses nothing.
func (s *Server) initdb(ctx context.Context, bin string, acct *account) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata", s.dataDir,
		"--username", superuser,
		"--auth", "trust", // local and host (127.0.0.1, ::1) lines
		"--encoding", "UTF8",
		"--locale", "C", // independent of the machine's locales, and fast
		"--no-sync",
	)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: acct.cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run initdb as %s: %w\n%s", acct.name, err, tail(out.Bytes()))
	}
	return nil
}

// launch starts postgres on port and waits until it accepts connections. It
// returns an error wrapping errPortInUse if postgres could not bind the port.
func (s *Server) launch(ctx context.Context, bin string, acct *account, port int) error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	logStart, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("seek server log: %w", err)
	}

	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", s.dataDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+s.dir,
		"-c", "max_connections=200",
		// Durability against a crash of the machine is pointless for a throwaway
		// cluster and costs most of the time of DDL-heavy tests (CREATE DATABASE,
		// migrations): nothing is flushed to disk. A commit still waits until its
		// WAL is written (to the OS), so a crash or restart of the server loses
		// nothing committed, as tandem assumes of its repository (with
		// synchronous_commit off, the soak's immediate restarts lost the last
		// ~200ms of commits: runs executed that the repository never had).
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
	)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: acct.cred,
		// If the test binary is killed (timeout, ^C, SIGKILL) it cannot stop
		// the server; the kernel then kills it for us. Pdeathsig is tied to
		// the creating OS thread, hence supervise.
		Pdeathsig: syscall.SIGKILL,
	}
	s.cmd = cmd
	s.port = port
	s.exited = make(chan struct{})
	started := make(chan error, 1)
	go s.supervise(started)
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres as %s: %w", acct.name, err)
	}

	if err := s.waitReady(ctx); err != nil {
		s.kill()
		logTail := readTail(s.logPath, logStart)
		if bindFailed(logTail) {
			return fmt.Errorf("start postgres on port %d: %w\n%s", port, errPortInUse, logTail)
		}
		return fmt.Errorf("start postgres on port %d: %w\n%s", port, err, logTail)
	}
	return nil
}

// supervise starts postgres and reaps it. The parent-death signal fires when
// the OS thread that forked the child exits, not the process, and the Go
// runtime does end threads (a goroutine that exits while locked to its thread
// takes the thread with it). So the fork happens on a thread locked to this
// goroutine, which stays blocked in Wait, keeping the thread alive, for as
// long as postgres runs. Once postgres has exited it unlocks, so the thread lives on:
// a goroutine that ends locked takes its thread with it, and that would deliver the
// parent-death signal to every other child the process ever forked on that thread
// (another test's processes, say), killing them at a server's Stop or Restart.
func (s *Server) supervise(started chan<- error) {
	runtime.LockOSThread()
	err := s.cmd.Start()
	started <- err
	if err != nil {
		runtime.UnlockOSThread()
		close(s.exited)
		return
	}
	s.waitErr = s.cmd.Wait()
	runtime.UnlockOSThread()
	close(s.exited)
}

// waitReady polls the server through its unix socket, which lives in our own
// directory, so a server of someone else's that happens to own the TCP port
// cannot be mistaken for ours.
func (s *Server) waitReady(ctx context.Context) error {
	q := url.Values{
		"host":    {s.dir},
		"port":    {strconv.Itoa(s.port)},
		"sslmode": {"disable"},
	}
	sock := (&url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/postgres", RawQuery: q.Encode()}).String()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited during startup: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres to accept connections: %w (last attempt: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(pingCtx, sock)
		if err == nil {
			err = conn.Close(pingCtx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
	}
}

// kill SIGKILLs postgres and waits for it; used only when startup failed.
func (s *Server) kill() {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return // cannot happen for our own child; don't hang on exited
	}
	<-s.exited
}

// Stop shuts the server down in fast mode (open transactions are rolled back
// and clients disconnected), waits for the process and removes its directory.
// Calling it again returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	// SIGINT is postgres's "fast" shutdown; SIGTERM ("smart") would wait for
	// clients that tests forgot to close.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("signal postgres: %w", err))
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		if s.waitErr != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w\n%s", s.waitErr, readTail(s.logPath, 0)))
		}
	case <-timer.C:
		s.kill()
		errs = append(errs, fmt.Errorf("stop postgres: no fast shutdown within %v, killed it\n%s", stopTimeout, readTail(s.logPath, 0)))
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove server directory: %w", err))
	}
	return errors.Join(errs...)
}

// RestartOptions says how Restart stops the server.
type RestartOptions struct {
	// Down is how long the server stays down before it starts again.
	Down time.Duration
	// Immediate stops it as a crash would (postgres's immediate shutdown: no checkpoint,
	// crash recovery at the next start) instead of a fast shutdown.
	Immediate bool
}

// Restart stops the server, every client connection with it, and starts it again on the
// same port with the same data: what a database failover or a reboot looks like to
// clients. It must not run at the same time as Stop or another Restart.
func (s *Server) Restart(ctx context.Context, o RestartOptions) error {
	sig := os.Interrupt // fast shutdown
	if o.Immediate {
		sig = syscall.SIGQUIT
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("restart postgres: signal: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
	case <-timer.C:
		s.kill()
	}
	if o.Down > 0 {
		down := time.NewTimer(o.Down)
		defer down.Stop()
		select {
		case <-down.C:
		case <-ctx.Done():
		}
	}
	// A port just given up may still be held for a moment (a client's socket on it); try
	// again for a while rather than move: clients know the server by its port.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startupTimeout)
	defer cancel()
	for {
		err := s.launch(ctx, s.bin, s.acct, s.port)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortInUse) || ctx.Err() != nil {
			return fmt.Errorf("restart postgres: %w", err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// findBinaries returns the directory holding initdb and postgres: initdb's on
// PATH (through symlinks, since Debian links them from elsewhere and postgres
// must come from the same installation), else the newest
// /usr/lib/postgresql/<version>/bin, which Debian does not put on PATH.
func findBinaries() (string, error) {
	hasPostgres := func(dir string) bool {
		fi, err := os.Stat(filepath.Join(dir, "postgres"))
		return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); hasPostgres(dir) {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob(debianInitdbGlob)
	best, bestVersion := "", -1.0
	for _, m := range matches {
		dir := filepath.Dir(m)
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64) // "15", "9.6"
		if err != nil || v <= bestVersion || !hasPostgres(dir) {
			continue
		}
		best, bestVersion = dir, v
	}
	if best == "" {
		return "", fmt.Errorf("find initdb and postgres on PATH or in %s: %w", filepath.Dir(debianInitdbGlob), ErrNotInstalled)
	}
	return best, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverEnv is the environment for initdb and postgres: ours without the PG*
// variables (a developer's PGDATA or PGPORT is meant for their own cluster)
// and with the C locale, so log messages are in English and bindFailed can
// recognise them.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") ||
			strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// bindFailed reports whether a postgres log says it could not listen on its
// TCP port, the one startup failure that is worth retrying on another port.
func bindFailed(log string) bool {
	return strings.Contains(log, "could not bind") ||
		strings.Contains(log, "could not create any TCP/IP sockets") ||
		strings.Contains(log, "Address already in use")
}

// tailBytes is how much of a log an error message quotes.
const tailBytes = 4 << 10

// readTail returns the end of the file at path from offset from on, for error
// messages; it never fails, since it is only used while reporting a failure.
func readTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-from > tailBytes {
		from = fi.Size() - tailBytes
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return "log " + path + ":\n" + tail(b)
}

// tail returns the last tailBytes of b, starting at a line boundary.
func tail(b []byte) string {
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimRight(b, "\n"))
}
