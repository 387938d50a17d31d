// Package pgtest owns the PostgreSQL servers that tests run against: it starts
// real, throwaway clusters (Start), one shared per test binary (Main), and
// hands each test a fresh database on it (NewDatabase).
//
// A package whose tests need PostgreSQL calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// or, to also check for leaked goroutines (the server is stopped by the time
// goleak looks):
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }
//
// and each test calls NewDatabase. If TANDEM_TEST_POSTGRES_URL is set (a
// postgres:// URL of a role that may create databases), databases are made on
// that server instead and nothing is started.
//
// Server binaries are found on PATH or in /usr/lib/postgresql/*/bin. Without
// them the PostgreSQL tests are skipped with a loud warning, except with
// CI=true, where that fails the test binary.
//
// postgres refuses to run as root. When the tests run as root the server runs
// as the system user tandem-pg, which is created (useradd --system) if it does
// not exist, or as nobody if that fails; its directory is made under TMPDIR
// (or /tmp if that user cannot reach TMPDIR) and chowned to it. Otherwise it
// runs as the current user.
//
// Servers die with the test binary even when it is killed (a parent-death
// signal), and server directories older than a day, left behind by killed
// binaries, are removed when a later one starts a server.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that points the tests at an existing
// server instead of starting one.
const EnvURL = "TANDEM_TEST_POSTGRES_URL"

// shared is what Main set up for this test binary. It is written before m.Run
// starts any test and only read by tests.
var shared struct {
	server   *Server
	external string // EnvURL's value, if set
	missing  error  // why the tests are skipped (no binaries, not CI)
}

// Runner runs a test binary's tests around the shared server; see Wrap.
type Runner struct{ m *testing.M }

// Wrap returns a Runner whose Run does what Main does except exiting. Its
// method set matches goleak.TestingM, so goleak.VerifyTestMain(pgtest.Wrap(m))
// checks for leaks after the server has been stopped.
func Wrap(m *testing.M) Runner { return Runner{m: m} }

// Main is for a package's TestMain: it starts one shared server for the whole
// test binary unless TANDEM_TEST_POSTGRES_URL is set (then that server is used
// and nothing is started), runs m, stops the server, and exits with m's code.
// If no server binaries are found it warns loudly on stderr and runs the tests,
// whose NewDatabase calls then skip; with CI=true it exits 1 instead, before
// running any test. Any other failure to start is a failure too.
func Main(m *testing.M) { os.Exit(Wrap(m).Run()) }

// Run starts the shared server, runs the tests and stops the server, and
// returns the exit code for the test binary.
func (r Runner) Run() int {
	if ext := os.Getenv(EnvURL); ext != "" {
		if err := checkExternal(ext); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %s is set but unusable: %v\n", EnvURL, err)
			return 1
		}
		shared.external = ext
		return r.m.Run()
	}

	srv, err := Start(context.Background())
	switch {
	case errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "true":
		fmt.Fprint(os.Stderr, banner(
			"pgtest: FAILING: no PostgreSQL server to test against, and CI=true.",
			err.Error(),
			"CI must run the PostgreSQL tests: install the server there",
			"(Debian/Ubuntu: apt-get install postgresql) or set "+EnvURL+".",
		))
		return 1
	case errors.Is(err, ErrNotInstalled):
		shared.missing = err
		fmt.Fprint(os.Stderr, skipBanner(err))
		code := r.m.Run()
		// Again at the end, where it is not buried under the test output.
		fmt.Fprint(os.Stderr, skipBanner(err))
		return code
	case err != nil:
		fmt.Fprintf(os.Stderr, "pgtest: start shared PostgreSQL server: %v\n", err)
		return 1
	}

	shared.server = srv
	code := r.m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop shared PostgreSQL server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Available reports whether the tests of this binary have a server: Main
// started one or TANDEM_TEST_POSTGRES_URL names one. It is false when Main
// found no server binaries, and also when Main was not called.
func Available() bool {
	return shared.server != nil || os.Getenv(EnvURL) != ""
}

// StartServer starts a server of the test's own (for tests that stop or restart it)
// and stops it when the test ends. Without server binaries it skips the test, unless
// CI is set.
func StartServer(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// NewDatabase creates a fresh, empty database with a unique name for one test
// and returns its postgres:// URL. The database is dropped when the test ends,
// connections the test left open notwithstanding. If Main found no server
// binaries (and CI is not set) it skips the test.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin, err := adminURL()
	if err != nil {
		if shared.missing != nil {
			t.Skip(strings.TrimSpace(skipBanner(shared.missing)))
		}
		t.Fatal(err)
	}
	name := databaseName(t.Name())
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// template0, not the default template1: on a server we did not create,
	// template1 may hold objects, and the database is to be empty.
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dbURL
}

// adminURL is the URL NewDatabase connects to to create and drop databases.
func adminURL() (string, error) {
	if ext := os.Getenv(EnvURL); ext != "" {
		return ext, nil
	}
	if shared.missing != nil {
		return "", shared.missing
	}
	if shared.server == nil {
		return "", errors.New("pgtest: no PostgreSQL server: call pgtest.Main(m) from this package's TestMain, or set " + EnvURL)
	}
	return shared.server.URL("postgres"), nil
}

// checkExternal makes a bad TANDEM_TEST_POSTGRES_URL one clear error up front
// rather than the same failure in every test.
func checkExternal(ext string) error {
	if _, err := withDatabase(ext, "x"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := adminExec(ctx, ext, "SELECT 1"); err != nil {
		return fmt.Errorf("query server: %w", err)
	}
	return nil
}

// withDatabase returns the postgres:// URL u with its database replaced by db.
func withDatabase(u, db string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		return "", fmt.Errorf("parse server URL: %q is not a postgres:// URL", u)
	}
	parsed.Path = "/" + db
	parsed.RawPath = ""
	return parsed.String(), nil
}

// adminExec runs one statement on a connection of its own; the statement's
// error is returned as is, for the caller to say what it was doing.
func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to server: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return err
	}
	return nil
}

// dropDatabase drops the database even if the test left connections to it
// open (a pool it never closed, say), which would make a plain DROP fail.
func dropDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: connect to server: %w", name, err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("drop database %s: read server version: %w", name, err)
	}
	quoted := pgx.Identifier{name}.Sanitize()
	if version >= 130000 {
		// FORCE terminates the connections and drops atomically, so a pool
		// cannot reconnect in between.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	// Before PostgreSQL 13: terminate, then drop, and repeat in case a client
	// reconnected in between.
	for attempt := 1; ; attempt++ {
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			return fmt.Errorf("drop database %s: terminate connections: %w", name, err)
		}
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoted)
		if err == nil {
			return nil
		}
		if attempt == 5 {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// databaseName makes a database name unique across test binaries sharing an
// external server, and recognisable in one: tandem_test_<test name>_<random>,
// within PostgreSQL's 63-byte limit.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 30 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 6)
	rand.Read(suffix) // never fails on Linux
	return "tandem_test_" + strings.TrimSuffix(b.String(), "_") + "_" + hex.EncodeToString(suffix)
}

// skipBanner is the warning printed when the PostgreSQL tests are skipped.
func skipBanner(why error) string {
	return banner(
		"pgtest: WARNING: PostgreSQL TESTS ARE SKIPPED in this test binary.",
		why.Error(),
		"To run them, install the PostgreSQL server (Debian/Ubuntu:",
		"apt-get install postgresql) or set "+EnvURL+" to a",
		"postgres:// URL of a role that may create databases.",
		"With CI=true this is a failure instead of a skip.",
	)
}

func banner(lines ...string) string {
	const rule = "********************************************************************************\n"
	var b strings.Builder
	b.WriteString("\n" + rule)
	for _, l := range lines {
		b.WriteString("*** " + l + "\n")
	}
	b.WriteString(rule + "\n")
	return b.String()
}
