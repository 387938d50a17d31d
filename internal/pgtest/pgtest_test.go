package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { Main(m) }

// Runner must fit goleak.VerifyTestMain, as the package doc promises.
var _ goleak.TestingM = Runner{}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestNewDatabaseGivesSeparateEmptyDatabases(t *testing.T) {
	urlA, urlB := NewDatabase(t), NewDatabase(t)
	if urlA == urlB {
		t.Fatalf("both databases have URL %s", urlA)
	}
	a, b := openDB(t, urlA), openDB(t, urlB)
	ctx := context.Background()

	for _, db := range []*sql.DB{a, b} {
		var tables int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database has %d tables, want 0", tables)
		}
	}

	if _, err := a.ExecContext(ctx, `CREATE TABLE jobs (id bigint PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, `INSERT INTO jobs VALUES ($1, $2)`, 7, "nightly"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := a.QueryRowContext(ctx, `SELECT name FROM jobs WHERE id = $1`, 7).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "nightly" {
		t.Errorf("read back name %q, want %q", name, "nightly")
	}

	var other sql.NullString
	if err := b.QueryRowContext(ctx, `SELECT to_regclass('jobs')::text`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	if other.Valid {
		t.Errorf("the other database has table %s too", other.String)
	}

	// The scheduler relies on clock_timestamp() (the time now, not at the
	// start of the transaction).
	var now time.Time
	if err := b.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now); d < -time.Minute || d > time.Minute {
		t.Errorf("clock_timestamp() = %v, %v away from the test's clock", now, d)
	}
}

// TestNewDatabaseDropsDatabase checks the cleanup drops the database although
// the test left a connection to it open.
func TestNewDatabaseDropsDatabase(t *testing.T) {
	if !Available() {
		t.Skip("no PostgreSQL server")
	}
	var leaked *sql.DB
	var dbName string
	t.Run("inner", func(t *testing.T) {
		u := NewDatabase(t)
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		leaked = db // deliberately not closed before the cleanup
		if err := db.QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
			t.Fatal(err)
		}
	})
	defer leaked.Close()

	admin, err := adminURL()
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, admin)
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, dbName).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", dbName)
	}
}

// TestStartStop runs a second, separate server. Its first port is taken, so
// it also checks that Start moves on to another port.
func TestStartStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	ports := 0
	nextPort := func() (int, error) {
		ports++
		if ports == 1 {
			return busyPort, nil
		}
		return freePort()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := start(ctx, nextPort)
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	if s.port == busyPort || ports < 2 {
		t.Errorf("server on port %d after %d port(s); port %d was busy", s.port, ports, busyPort)
	}
	if shared.server != nil && s.port == shared.server.port {
		t.Fatalf("second server has the shared server's port %d", s.port)
	}

	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var now time.Time
	var maxConns, fsync string
	err = db.QueryRowContext(ctx, `SELECT clock_timestamp(), current_setting('max_connections'), current_setting('fsync')`).Scan(&now, &maxConns, &fsync)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if maxConns != "200" || fsync != "off" {
		t.Errorf("max_connections = %s, fsync = %s; want 200, off", maxConns, fsync)
	}
	if os.Geteuid() == 0 {
		// postgres would not have started as root, but check who owns the
		// data directory: the unprivileged server user.
		fi, err := os.Stat(s.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("data directory %s is owned by root", s.dataDir)
		}
	}

	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts connections after Stop", s.port)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory %s after Stop: %v, want it gone", s.dir, err)
	}
}

func TestDatabaseName(t *testing.T) {
	a, b := databaseName("TestFoo/sub_test#01"), databaseName("TestFoo/sub_test#01")
	if a == b {
		t.Errorf("two names are both %s", a)
	}
	long := databaseName("TestAVeryLongTestNameThatGoesOnAndOn/with/many/subtests/and/more")
	if len(long) > 63 {
		t.Errorf("name %s is %d bytes, over PostgreSQL's 63", long, len(long))
	}
	for _, n := range []string{a, long} {
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("name %s has %q", n, r)
			}
		}
	}
}

func TestFindBinaries(t *testing.T) {
	if _, err := findBinaries(); err != nil && !errors.Is(err, ErrNotInstalled) {
		t.Errorf("findBinaries: %v, want nil or ErrNotInstalled", err)
	}

	t.Setenv("PATH", t.TempDir())
	defer func(g string) { debianInitdbGlob = g }(debianInitdbGlob)
	debianInitdbGlob = filepath.Join(t.TempDir(), "*", "bin", "initdb")
	if dir, err := findBinaries(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("findBinaries without binaries = %q, %v; want ErrNotInstalled", dir, err)
	}
}

// Restart ends every client connection and brings the server back on the same port
// with the same data, after a fast or an immediate (crash-like) shutdown.
func TestRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := StartServer(t)
	db := openDB(t, s.URL("postgres"))
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	// A connection of its own, kept open across the restarts.
	conn, err := openDB(t, s.URL("postgres")).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	port := s.port
	for _, o := range []RestartOptions{{Down: 200 * time.Millisecond}, {Immediate: true}} {
		t0 := time.Now()
		if err := s.Restart(ctx, o); err != nil {
			t.Fatalf("restart %+v: %v", o, err)
		}
		if took := time.Since(t0); took < o.Down {
			t.Errorf("restart %+v took %s, want the server down for at least %s", o, took, o.Down)
		}
		if s.port != port {
			t.Errorf("restart %+v moved the server from port %d to %d", o, port, s.port)
		}
		var v int
		if err := db.QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
			t.Errorf("after restart %+v: read %d, %v; want 7", o, v, err)
		}
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("a connection from before the restarts still works")
	}
}
